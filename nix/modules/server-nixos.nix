# NixOS module for the Capstan server.
#
#   services.capstan-server = {
#     enable = true;
#     settings.public_url = "https://capstan.example.org";
#     package = capstan;
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.capstan-server;
  inherit (lib) mkEnableOption mkOption mkIf types;
  # The server reads flat `key = "value"` lines (see docs/configuration.md).
  configFile = pkgs.writeText "capstan.toml" (lib.concatStrings (lib.mapAttrsToList
    (key: value: "${key} = \"${toString value}\"\n") cfg.settings));
in
{
  options.services.capstan-server = {
    enable = mkEnableOption "the Capstan server (binary caches and deployments)";

    settings = mkOption {
      type = types.attrsOf (types.oneOf [ types.str types.int ]);
      default = { };
      example = { listen = "127.0.0.1:8080"; public_url = "https://capstan.example.org"; };
      description = ''
        Server settings (docs/configuration.md): listen, public_url, database_url, max_nar_size,
        default_workspace, blob_store, nar_redirect, gc_interval, gc_blob_grace.
        `data_dir` is always /var/lib/capstan.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        Environment file for secrets, e.g. `CAPSTAN_DATABASE_URL=postgres://…`, or the object store's
        `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
      '';
    };

    package = mkOption {
      type = types.package;
      default = pkgs.capstan or (throw "services.capstan-server.package: set it to a build of Capstan");
      defaultText = "pkgs.capstan";
      description = "The Capstan package providing `bin/capstan`.";
    };
  };

  config = mkIf cfg.enable {
    systemd.services.capstan-server = {
      description = "Capstan server";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" "postgresql.service" ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/capstan serve --config ${configFile} --data-dir /var/lib/capstan";
        EnvironmentFile = lib.optional (cfg.environmentFile != null) cfg.environmentFile;
        DynamicUser = true;
        StateDirectory = "capstan";
        Restart = "on-failure";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
      };
    };
  };
}
