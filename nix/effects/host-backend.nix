# Effects without nixpkgs: builtins.derivation, the host's /bin/sh and tools from /usr/bin:/bin.
{ system }:
{
  kind = "host";

  # Builds the effect derivation; `attrs` are its final attributes (strings, lists, booleans, paths).
  mkDerivation =
    { inputs, ... }@attrs:
    builtins.derivation (
      builtins.removeAttrs attrs [ "inputs" ]
      // {
        system = attrs.system or system;
        builder = "/bin/sh";
        args = [ ./effect-builder.sh ];
        PATH = builtins.concatStringsSep ":" (map (input: "${input}/bin") inputs ++ [ "/usr/bin" "/bin" ]);
      }
    );

  # A file in the store with `text`, which may refer to other derivations' outputs.
  writeText =
    name: text:
    builtins.derivation {
      inherit name system text;
      builder = "/bin/sh";
      args = [ "-c" "printf '%s' \"$text\" > \"$out\"" ];
    };

  # Secret helpers read the effect's secrets file with the capstan CLI (no jq needed on the host).
  secretFunctions = capstanExe: ''
    readSecretString() {
      ${capstanExe} secret get "$HERCULES_CI_SECRETS_JSON" "$1" "$2"
    }
    readSecretJSON() {
      ${capstanExe} secret get --json "$HERCULES_CI_SECRETS_JSON" "$1" "$2"
    }
  '';
}
