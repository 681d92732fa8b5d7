# runCachixDeploy: activate a deploy.json with `capstan deploy activate`, as an effect.
{
  backend,
  mkEffectWith,
  defaultCapstan,
}:
{
  deploy ? null,
  deployJsonFile ? null,
  async ? false,
  secretsMap ? { },
  # The capstan CLI: a package (nixpkgs) or the executable's path (without nixpkgs).
  capstan ? defaultCapstan,
  # The Capstan server; when null, the `url` field of the activate secret, else capstan's default.
  url ? null,
  passthru ? { },
  ...
}@args:
let
  deployJson =
    if deploy != null && deployJsonFile != null then
      throw "runCachixDeploy: you must set either `deploy` or `deployJsonFile`"
    else if deploy != null then
      backend.writeText "deploy.json" (builtins.toJSON deploy)
    else if deployJsonFile != null then
      deployJsonFile
    else
      throw "runCachixDeploy: you must provide either a deploy or deployJsonFile argument";
  agentPaths =
    if deploy != null then
      builtins.attrValues (deploy.agents or { }) ++ builtins.attrValues (deploy.rollbackScript or { })
    else
      [ ];
  capstanExe = import ./capstan-exe.nix "runCachixDeploy" capstan;
  mkEffect = mkEffectWith capstan;
in
mkEffect (
  builtins.removeAttrs args [
    "deploy"
    "deployJsonFile"
    "async"
    "secretsMap"
    "capstan"
    "url"
    "passthru"
  ]
  // {
    name = "cachix-deploy-effect";
    secretsMap = {
      activate = "default-cachix-activate";
    }
    // secretsMap;
    userSetupScript = ''
      CACHIX_ACTIVATE_TOKEN="$(readSecretString activate .cachixActivateToken)"
      export CACHIX_ACTIVATE_TOKEN
    ''
    + (
      if url != null then
        ''
          CAPSTAN_URL=${builtins.toJSON url}
          export CAPSTAN_URL
        ''
      else
        ''
          if CAPSTAN_URL="$(readSecretString activate .url 2>/dev/null)"; then export CAPSTAN_URL; fi
        ''
    )
    + (args.userSetupScript or "");
    effectScript =
      args.effectScript or ''
        ${capstanExe} deploy activate ${deployJson}${if async then " --async" else ""}
      '';
    passthru = passthru // {
      prebuilt = [ deployJson ] ++ agentPaths;
    };
  }
)
