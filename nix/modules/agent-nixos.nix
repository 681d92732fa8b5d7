# NixOS module for the Capstan deployment agent.
#
#   services.capstan-agent = {
#     enable = true;
#     url = "https://capstan.example.org";
#     credentialsFile = "/etc/capstan-agent/credentials";   # CAPSTAN_AGENT_TOKEN=…
#     package = capstan;                                     # a build of this repository's CLI
#     checks = [                                             # after every activation; failing → rollback
#       { systemd = "no-failed-units"; }
#       { http = "http://127.0.0.1:8080/health"; status = 200; timeout = "5s"; }
#     ];
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.capstan-agent;
  inherit (lib) mkEnableOption mkOption mkIf types escapeShellArgs;
  checkArguments = builtins.concatLists (map (check: [ "--check" (builtins.toJSON check) ]) cfg.checks);
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

    activation = mkOption {
      type = types.enum [ "two-phase" "switch" ];
      default = "two-phase";
      description = ''
        How deployments are activated. `two-phase`: `switch-to-configuration test`, then the checks,
        then `switch-to-configuration boot`, so that a machine which crashes or hangs before the
        checks pass boots into the previous generation. `switch`: `switch-to-configuration switch` at once.
      '';
    };

    activationTimeout = mkOption {
      type = types.str;
      default = "10m";
      example = "5m";
      description = ''
        Longest an activation may take, from the switch to the boot entry, checks included; a hung
        switch or check is then stopped and the machine rolled back. A deploy.json may lower it.
      '';
    };

    checks = mkOption {
      type = types.listOf (types.attrsOf types.anything);
      default = [ ];
      example = [ { systemd = "no-failed-units"; } { command = [ "/run/current-system/sw/bin/true" ]; timeout = "30s"; } ];
      description = ''
        Health checks of this machine, run after every activation besides those of the deployment:
        `{ systemd = "no-failed-units"; }`, `{ http = URL; status = 200; timeout = "10s"; }` or
        `{ command = [ PATH ARG… ]; timeout = "30s"; }`. All must pass within `checkGrace`, or the
        machine rolls back.
      '';
    };

    checkGrace = mkOption {
      type = types.str;
      default = "30s";
      description = "How long failing checks are retried before the deployment is rolled back (a deploy.json's `grace` wins).";
    };

    rebootPolicy = mkOption {
      type = types.enum [ "never" "when-needed" ];
      default = "never";
      description = ''
        `never`: only report (on the dashboard and in `capstan agent list`) that a deployed configuration
        needs a reboot (its kernel, initrd or kernel modules differ from the booted ones). `when-needed`:
        reboot with `rebootCommand` within `maintenanceWindow`, and fail and roll back the deployment
        if the machine does not boot it.
      '';
    };

    maintenanceWindow = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "Sun 02:00-04:00";
      description = ''
        When the agent may reboot, in the machine's local time: `"Sun 02:00-04:00"`,
        `"Sat,Sun 23:00-01:00"` (ends the next day) or `"02:00-04:00"` (every day); null: at once.
      '';
    };

    rebootCommand = mkOption {
      type = types.str;
      default = "systemctl reboot";
      description = "The command the agent runs to reboot (split at spaces).";
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
      # systemctl for the systemd check.
      path = [ config.nix.package config.systemd.package ];
      # The agent runs deployments that may restart this very unit: never stop it in the middle
      # of switch-to-configuration, and never kill the deployment process it started.
      restartIfChanged = false;
      stopIfChanged = false;
      serviceConfig = {
        ExecStart = escapeShellArgs ([
          "${cfg.package}/bin/capstan" "deploy" "agent" cfg.name cfg.profile
          "--url" cfg.url
          "--state-dir" "/var/lib/capstan-agent"
          "--verify-timeout" (toString cfg.verifyTimeout)
          "--activation" cfg.activation
          "--activation-timeout" cfg.activationTimeout
          "--check-grace" cfg.checkGrace
          "--reboot-policy" cfg.rebootPolicy
          "--reboot-command" cfg.rebootCommand
        ] ++ (if cfg.maintenanceWindow != null then [ "--maintenance-window" cfg.maintenanceWindow ] else [ ])
          ++ checkArguments);
        EnvironmentFile = cfg.credentialsFile;
        StateDirectory = "capstan-agent";
        KillMode = "process";
        Restart = "always";
        RestartSec = 5;
      };
    };
  };
}
