# nix-darwin module for the Capstan agent: deploys the machine's nix-darwin system.
#
#   services.capstan-agent = {
#     enable = true;
#     name = "build-mac-1";
#     url = "https://capstan.example.org";
#     credentialsFile = "/etc/capstan-agent/credentials";   # CAPSTAN_AGENT_TOKEN=…
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.capstan-agent;
  inherit (lib) mkEnableOption mkOption mkIf types escapeShellArgs;
  launcher = pkgs.writeShellScript "capstan-agent" ''
    set -a
    . ${lib.escapeShellArg (toString cfg.credentialsFile)}
    set +a
    exec ${escapeShellArgs [
      "${cfg.package}/bin/capstan" "deploy" "agent" cfg.name cfg.profile
      "--url" cfg.url
      "--state-dir" "/var/lib/capstan-agent"
    ]}
  '';
in
{
  options.services.capstan-agent = {
    enable = mkEnableOption "the Capstan deployment agent for this nix-darwin machine";
    name = mkOption { type = types.str; description = "Agent name, as deploy.json names this machine."; };
    profile = mkOption {
      type = types.str;
      default = "system";
      description = "Profile (under /nix/var/nix/profiles) that deployments switch.";
    };
    url = mkOption { type = types.str; description = "URL of the Capstan server."; };
    credentialsFile = mkOption {
      type = types.path;
      description = "File with `CAPSTAN_AGENT_TOKEN=…`, outside the Nix store, readable by root only.";
    };
    package = mkOption {
      type = types.package;
      default = pkgs.capstan or (throw "services.capstan-agent.package: set it to a build of Capstan");
      defaultText = "pkgs.capstan";
      description = "The Capstan package providing `bin/capstan`.";
    };
  };

  config = mkIf cfg.enable {
    launchd.daemons.capstan-agent.serviceConfig = {
      ProgramArguments = [ "${launcher}" ];
      KeepAlive = true;
      RunAtLoad = true;
      StandardErrorPath = "/var/log/capstan-agent.log";
      StandardOutPath = "/var/log/capstan-agent.log";
    };
  };
}
