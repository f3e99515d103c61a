# The runner: `lollypops` and `lollypops-step`, the worker its tasks call,
# which must stay side by side in one bin directory.
{
  lib,
  buildGoModule,
}:
let
  # Bumped at release. Not the flake's revision: the package must be the same
  # store path whichever way the lollypops source reaches Nix (a git checkout,
  # a `path:` input), so that a pre-built runner is found (tests/vm relies on
  # it) and users of one release share one build.
  version = "0.1.0";
in
buildGoModule {
  pname = "lollypops";
  inherit version;

  src = lib.fileset.toSource {
    root = ../go;
    # All of go/ (the tests read their testdata), but no local vendor/.
    fileset = lib.fileset.difference ../go (lib.fileset.maybeMissing ../go/vendor);
  };

  # The NAR hash of `go mod vendor` for go/: buildGoModule's goModules
  # derivation runs `go mod vendor` and copies vendor/ (modules.txt
  # included) to $out, a recursive fixed-output path, so this is exactly
  # what `nix hash path` prints for that directory. Recompute it with
  # nix/update-vendor-hash.sh; tests/nix/check-vendor-hash.sh catches a
  # stale one.
  vendorHash = "sha256-jOMu8SFja/eCN40jTolmCh0DBz55Jns2YlukjD/KuEE=";

  subPackages = [
    "cmd/lollypops"
    "cmd/lollypops-step"
  ];

  # Static, without cgo: a fleet deploy starts lollypops-step several
  # times per host, and a binary linked against libc spends more than a
  # third of its start in the dynamic loader (docs/benchmarks.md). Nothing
  # needs cgo: the runner resolves no host names (ssh does), and the user
  # name it records in the deploy lock falls back to $USER.
  env.CGO_ENABLED = 0;

  ldflags = [
    "-s"
    "-w"
    "-X github.com/lollypops/lollypops/go/internal/version.Version=${version}"
  ];

  # buildGoModule tests only `subPackages`; test the whole module. Tests that
  # need root, sshd or nix skip in the sandbox, each with one line.
  checkPhase = ''
    runHook preCheck
    export GOFLAGS=''${GOFLAGS//-trimpath/}
    go test -vet=off -p "$NIX_BUILD_CORES" ./...
    runHook postCheck
  '';

  meta = {
    description = "Parallel, stateless NixOS deployment, configured in Nix";
    mainProgram = "lollypops";
    platforms = lib.platforms.unix;
  };
}
