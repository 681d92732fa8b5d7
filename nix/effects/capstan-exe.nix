# The capstan executable an effect runs: `capstan` is a package (its bin/capstan) or the
# executable's own path. Without one the effect would fail only when it runs ("capstan: not
# found", exit 127), so evaluation stops here and says how to give one.
caller: capstan:
if capstan == null then
  throw ''
    ${caller}: no capstan CLI for the effect to run: nixpkgs has no `capstan` package and none was given.
    Give Capstan's nix library one, either a package:
      import ./capstan/nix { inherit pkgs; capstan = <a Capstan package>; }
    or, without nixpkgs, the executable you have, added to the store with
    `nix-store --add $(command -v capstan)`:
      import ./capstan/nix { pkgs = null; capstan = builtins.storePath "/nix/store/…-capstan"; }
    (runCachixDeploy also takes `capstan = …;` itself).''
else if builtins.isAttrs capstan then
  "${capstan}/bin/capstan"
else
  "${capstan}"
