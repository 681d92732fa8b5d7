# A closure for the cache benchmarks, built without nixpkgs. `sizeMiB` sets the total NAR size
# (roughly): 40 % large random files, 20 % one compressible text file, 40 % many small files in
# `libs` paths that reference each other; `small` adds that many tiny paths (narinfo load).
{ sizeMiB ? 640, libs ? 6, small ? 0, tag ? "bench" }:
let
  kib = mib: toString (mib * 1024);
  mk = name: kind: sizeKiB: seed: deps: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" "python3 ${./gen.py}" ];
    KIND = kind;
    SIZE_KIB = sizeKiB;
    SEED = toString seed;
    DEPS = toString deps;
    TAG = tag;
  };
  random = mk "bench-random" "random" (kib (sizeMiB * 4 / 10)) 1 [ ];
  text = mk "bench-text" "text" (kib (sizeMiB * 2 / 10)) 2 [ ];
  libSize = kib (sizeMiB * 4 / 10 / libs);
  libChain = builtins.foldl'
    (acc: i: acc ++ [ (mk "bench-lib${toString i}" "files" libSize (10 + i) (if acc == [ ] then [ ] else [ (builtins.elemAt acc (builtins.length acc - 1)) ])) ])
    [ ] (builtins.genList (i: i) libs);
  smallPaths = builtins.genList (i: mk "bench-small${toString i}" "files" "4" (1000 + i) [ ]) small;
in
mk "bench-app" "files" "64" 3 ([ random text ] ++ libChain ++ smallPaths)
