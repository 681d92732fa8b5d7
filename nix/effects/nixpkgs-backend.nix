# Effects with nixpkgs: stdenvNoCC, tools from nixpkgs, jq for the secret helpers.
{ pkgs }:
let
  phasesOf = attrs: attrs.phases;
in
{
  kind = "nixpkgs";

  mkDerivation =
    { inputs, ... }@attrs:
    pkgs.stdenvNoCC.mkDerivation (
      builtins.removeAttrs attrs [ "inputs" ]
      // {
        nativeBuildInputs = inputs ++ [ pkgs.jq ];
        phases = phasesOf attrs;
      }
    );

  writeText = pkgs.writeText;

  secretFunctions = _capstanExe: ''
    __capstanReadSecret() {
      local mode="$1" name="$2" path="$3" value
      if ! value=$(jq -e "$mode" --arg name "$name" ".[\$name].data$path" <"$HERCULES_CI_SECRETS_JSON" 2>/dev/null); then
        echo "Could not find path $path in secret $name" >&2
        return 1
      fi
      printf '%s' "$value"
    }
    readSecretString() { __capstanReadSecret -r "$1" "$2"; }
    readSecretJSON() { __capstanReadSecret -c "$1" "$2"; }
  '';
}
