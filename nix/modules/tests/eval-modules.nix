# Evaluates the modules' option declarations and generated units without nixpkgs: `lib` and
# `pkgs` are replaced by the few functions the modules use. Run by the test suite:
#   nix-instantiate --eval --strict --json nix/modules/tests/eval-modules.nix
let
  lib = {
    mkEnableOption = description: { _type = "option"; type = "bool"; default = false; inherit description; };
    mkOption = attrs: attrs // { _type = "option"; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    types = {
      str = "str"; path = "path"; int = "int"; package = "package";
      nullOr = t: "null or ${t}"; attrsOf = t: "attribute set of ${t}"; oneOf = ts: "one of";
      enum = values: "one of ${builtins.concatStringsSep ", " values}"; listOf = t: "list of ${t}"; anything = "anything";
    };
    escapeShellArg = arg: "'${arg}'";
    escapeShellArgs = args: builtins.concatStringsSep " " (map (arg: "'${arg}'") args);
    optional = condition: value: if condition then [ value ] else [ ];
    concatStrings = builtins.concatStringsSep "";
    mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (builtins.attrNames attrs);
  };
  # The stand-ins return the text itself, so the test can read what would be written.
  pkgs = {
    writeShellScript = name: text: text;
    writeText = name: text: text;
  };
  agentSettings = {
    enable = true; name = "web1"; profile = "system"; url = "https://capstan.example.org";
    credentialsFile = "/etc/capstan-agent/credentials"; verifyTimeout = 90; package = "/capstan";
    activation = "two-phase"; activationTimeout = "5m"; checkGrace = "45s";
    rebootPolicy = "when-needed"; maintenanceWindow = "Sun 02:00-04:00"; rebootCommand = "systemctl reboot";
    checks = [ { systemd = "no-failed-units"; } { http = "http://127.0.0.1:8080/"; status = 200; } ];
  };
  config = {
    networking.hostName = "host";
    nix.package = "/nix-package";
    systemd.package = "/systemd-package";
    xdg.stateHome = "/home/alice/.local/state";
    services.capstan-agent = agentSettings;
    services.capstan-server = {
      enable = true; package = "/capstan"; environmentFile = null;
      settings = { listen = "127.0.0.1:8080"; public_url = "https://capstan.example.org"; };
    };
  };
  load = file: import file { inherit config lib pkgs; };
  optionNames = module: path: builtins.attrNames (builtins.getAttr path (load module).options.services);
  nixos = load ../agent-nixos.nix;
  homeManager = load ../agent-home-manager.nix;
  darwin = load ../agent-darwin.nix;
  server = load ../server-nixos.nix;
in
{
  nixosAgentOptions = optionNames ../agent-nixos.nix "capstan-agent";
  homeManagerAgentOptions = optionNames ../agent-home-manager.nix "capstan-agent";
  darwinAgentOptions = optionNames ../agent-darwin.nix "capstan-agent";
  serverOptions = optionNames ../server-nixos.nix "capstan-server";
  nixosAgentUnit = nixos.config.content.systemd.services.capstan-agent.serviceConfig;
  nixosAgentRestartIfChanged = nixos.config.content.systemd.services.capstan-agent.restartIfChanged;
  homeManagerUnit = homeManager.config.content.systemd.user.services.capstan-agent.Service;
  homeManagerLauncher = homeManager.config.content.systemd.user.services.capstan-agent.Service.ExecStart;
  darwinLauncher = builtins.head darwin.config.content.launchd.daemons.capstan-agent.serviceConfig.ProgramArguments;
  serverExec = server.config.content.systemd.services.capstan-server.serviceConfig.ExecStart;
}
