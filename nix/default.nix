# Capstan's Nix library: mkEffect and runCachixDeploy.
#
#   With nixpkgs:    import ./nix { pkgs = import <nixpkgs> { }; capstan = <the capstan package>; }
#   Without nixpkgs: import ./nix { pkgs = null; capstan = "/nix/store/…-capstan"; }
#                    (effects are plain derivations run by the host's /bin/sh, PATH /usr/bin:/bin;
#                    `capstan` is then the path of the executable itself)
{
  pkgs ? (if builtins.any (entry: entry.prefix == "nixpkgs") builtins.nixPath then import <nixpkgs> { } else null),
  capstan ? if pkgs != null then pkgs.capstan or null else null,
  system ? builtins.currentSystem,
}:
let
  backend =
    if pkgs == null then
      import ./effects/host-backend.nix { inherit system; }
    else
      import ./effects/nixpkgs-backend.nix { inherit pkgs; };
  mkEffect = import ./effects/mk-effect.nix { inherit backend capstan; };
  mkEffectWith = capstan: import ./effects/mk-effect.nix { inherit backend capstan; };
  runCachixDeploy = import ./effects/run-cachix-deploy.nix {
    inherit backend mkEffectWith;
    defaultCapstan = capstan;
  };
in
{
  inherit mkEffect runCachixDeploy;
}
