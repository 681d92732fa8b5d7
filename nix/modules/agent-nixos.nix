# NixOS module for the Capstan deployment agent.
#
#   services.capstan-agent = {
#     enable = true;
#     url = "https://capstan.example.org";
#     credentialsFile = "/etc/capstan-agent/credentials";   # CAPSTAN_AGENT_TOKEN=…
#     package = capstan;                                     # a build of this repository's CLI
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.capstan-agent;
  inherit (lib) mkEnableOption mkOption mkIf types escapeShellArgs;
in
{
  options.services.capstan-agent = {
    enable = mkEnableOption "the Capstan deployment agent, which pulls and activates this machine's deployments";

    name = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = "config.networking.hostName";
      description = "Agent name, as deploy.json names this machine (created with `capstan agent create NAME`).";
    };

    profile = mkOption {
      type = types.str;
      default = "system";
      description = "Profile (under /nix/var/nix/profiles) that deployments switch.";
    };

    url = mkOption {
      type = types.str;
      example = "https://capstan.example.org";
      description = "URL of the Capstan server.";
    };

    credentialsFile = mkOption {
      type = types.path;
      description = ''
        File with the agent token, as `CAPSTAN_AGENT_TOKEN=…` (environment-file syntax).
        Kept out of the Nix store; readable by root only.
      '';
    };

    verifyTimeout = mkOption {
      type = types.int;
      default = 60;
      description = "Seconds the server may take to answer again after an activation before the agent rolls back.";
    };

    package = mkOption {
      type = types.package;
      default = pkgs.capstan or (throw "services.capstan-agent.package: set it to a build of Capstan");
      defaultText = "pkgs.capstan";
      description = "The Capstan package providing `bin/capstan`.";
    };
  };

  config = mkIf cfg.enable {
    systemd.services.capstan-agent = {
      description = "Capstan deployment agent";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      path = [ config.nix.package ];
      # The agent runs deployments that may restart this very unit: never stop it in the middle
      # of switch-to-configuration, and never kill the deployment process it started.
      restartIfChanged = false;
      stopIfChanged = false;
      serviceConfig = {
        ExecStart = escapeShellArgs [
          "${cfg.package}/bin/capstan" "deploy" "agent" cfg.name cfg.profile
          "--url" cfg.url
          "--state-dir" "/var/lib/capstan-agent"
          "--verify-timeout" (toString cfg.verifyTimeout)
        ];
        EnvironmentFile = cfg.credentialsFile;
        StateDirectory = "capstan-agent";
        KillMode = "process";
        Restart = "always";
        RestartSec = 5;
      };
    };
  };
}
