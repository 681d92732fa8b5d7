# Runs an effect's phases in order (the builder of effects made without nixpkgs; POSIX sh).
set -e

runHook() {
  eval "__capstanHook=\${$1:-}"
  eval "$__capstanHook"
}

for curPhase in $phases; do
  eval "__capstanPhase=\${$curPhase:-}"
  eval "$__capstanPhase"
done
