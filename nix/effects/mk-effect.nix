# An effect: a derivation with isEffect = true whose builder runs the phases
#   initPhase unpackPhase patchPhase getStatePhase userSetupPhase priorCheckPhase
#   effectPhase putStatePhase effectCheckPhase
# each as `runHook preX; eval "$xScript"; runHook postX`. `secretsMap` (local name → secret name)
# is stored as JSON; readSecretString / readSecretJSON read the secrets it grants.
{ backend, capstan }:
let
  phaseNames = [
    "init"
    "unpack"
    "patch"
    "getState"
    "userSetup"
    "priorCheck"
    "effect"
    "putState"
    "effectCheck"
  ];
  capitalise =
    name: builtins.replaceStrings [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ] [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ] (builtins.substring 0 1 name)
    + builtins.substring 1 (-1) name;
  phaseCode =
    name:
    "runHook pre${capitalise name}\neval \"\${${name}Script:-}\"\nrunHook post${capitalise name}\n";
  capstanExe = import ./capstan-exe.nix "mkEffect" capstan;
in
{
  name ? "effect",
  inputs ? [ ],
  secretsMap ? { },
  passthru ? { },
  ...
}@args:
let
  helpers = backend.writeText "effect-secret-functions.sh" (backend.secretFunctions capstanExe);
  phaseAttrs = builtins.listToAttrs (
    map (name: {
      name = "${name}Phase";
      value = phaseCode name;
    }) phaseNames
  );
  drv = backend.mkDerivation (
    builtins.removeAttrs args [
      "passthru"
      "secretsMap"
    ]
    // phaseAttrs
    // {
      name = "effect-${name}";
      inherit inputs;
      isEffect = true;
      secretsMap = builtins.toJSON secretsMap;
      phases = map (name: "${name}Phase") phaseNames;
      # The secret helpers are defined before any phase runs, so every script can use them.
      initPhase = ". ${helpers}\n" + phaseCode "init";
    }
  );
in
drv // passthru // { inherit passthru; }
