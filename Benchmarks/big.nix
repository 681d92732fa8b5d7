# One store path holding a single large incompressible file (the memory benchmark's 2 GiB NAR).
{ sizeMiB ? 2048 }:
derivation {
  name = "bench-big-${toString sizeMiB}m";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = [ "-c" "python3 ${./gen.py}" ];
  KIND = "single";
  SIZE_KIB = toString (sizeMiB * 1024);
  SEED = "7";
}
