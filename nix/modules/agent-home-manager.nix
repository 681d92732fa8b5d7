# Home Manager module for the Capstan agent: deploys a user's Home Manager configuration.
#
#   services.capstan-agent = {
#     enable = true;
#     name = "alice-laptop";
#     url = "https://capstan.example.org";
#     credentialsFile = "/home/alice/.config/capstan/agent-credentials";   # CAPSTAN_AGENT_TOKEN=…
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.capstan-agent;
  inherit (lib) mkEnableOption mkOption mkIf types escapeShellArgs;
  stateDir = "${config.xdg.stateHome}/capstan-agent";
  profilesDir = "${config.xdg.stateHome}/nix/profiles";
  command = [
    "${cfg.package}/bin/capstan" "deploy" "agent" cfg.name cfg.profile
    "--url" cfg.url
    "--profiles-dir" profilesDir
    "--state-dir" stateDir
  ];
  # launchd has no environment files: read the credentials in a tiny shell.
  launcher = pkgs.writeShellScript "capstan-agent" ''
    set -a
    . ${lib.escapeShellArg (toString cfg.credentialsFile)}
    set +a
    exec ${escapeShellArgs command}
  '';
in
{
  options.services.capstan-agent = {
    enable = mkEnableOption "the Capstan agent for this user's Home Manager configuration";
    name = mkOption { type = types.str; description = "Agent name, as deploy.json names it."; };
    profile = mkOption {
      type = types.str;
      default = "home-manager";
      description = "Profile (under ~/.local/state/nix/profiles) that deployments switch.";
    };
    url = mkOption { type = types.str; description = "URL of the Capstan server."; };
    credentialsFile = mkOption {
      type = types.path;
      description = "File with `CAPSTAN_AGENT_TOKEN=…`, outside the Nix store.";
    };
    package = mkOption {
      type = types.package;
      default = pkgs.capstan or (throw "services.capstan-agent.package: set it to a build of Capstan");
      defaultText = "pkgs.capstan";
      description = "The Capstan package providing `bin/capstan`.";
    };
  };

  config = mkIf cfg.enable {
    systemd.user.services.capstan-agent = {
      Unit.Description = "Capstan deployment agent (Home Manager)";
      Service = {
        ExecStart = "${launcher}";
        KillMode = "process";
        Restart = "always";
        RestartSec = 5;
      };
      Install.WantedBy = [ "default.target" ];
    };
    launchd.agents.capstan-agent = {
      enable = true;
      config = {
        ProgramArguments = [ "${launcher}" ];
        KeepAlive = true;
        RunAtLoad = true;
      };
    };
  };
}
