# NixOS VM tests: a deployer runs the real lollypops app, from a flake like
# the README's, against three targets, offline.
#
# Nothing is faked. Offline works because every store path a run needs is
# already valid in the VMs: the test evaluates the same fleet
# (./fleet/hosts.nix) with the same inputs beforehand and registers the
# systems, sources and tools (`virtualisation.additionalPaths`); all that is
# built in the VMs is the app's wrapper and its list of host names (plain
# text files, for which stdenvNoCC is enough). The runner evaluates the
# hosts from the sources, in the deployer VM.
{
  pkgs,
  self,
  nixpkgs,
  app,
}:
let
  inherit (pkgs) lib;

  homeManager = import ./home-manager.nix;
  keys = import (pkgs.path + "/nixos/tests/ssh-keys.nix") pkgs;

  targets = [
    "alpha"
    "beta"
    "gamma"
  ];
  markers = [
    "FIRST"
    "SECOND"
    "THIRD"
    # The activation's failure scenarios (./fleet/hosts.nix).
    "FLAKY"
    "SLOWCHECK"
  ];

  # Each target's network configuration as the test framework assigns it,
  # from an evaluation of the same node names alone (as colmena's tests do),
  # so that the systems below do not depend on the test's own nodes. It goes
  # through JSON as it will in the VM.
  network = builtins.fromJSON (
    builtins.toJSON (
      lib.genAttrs targets (
        name:
        ((import (pkgs.path + "/nixos/lib") { }).evalTest {
          imports = [
            {
              name = "lollypops-network";
              hostPkgs = pkgs;
              nodes = lib.genAttrs ([ "deployer" ] ++ targets) (_: { });
            }
          ];
        }).config.nodes.${name}.system.build.networkConfig
      )
    )
  );

  fleetWith =
    marker:
    import ./fleet/hosts.nix {
      inherit
        nixpkgs
        network
        marker
        ;
      lollypops = self;
      home-manager = homeManager;
      extra = ./extra-input;
    };

  # toplevels.<target>.<marker>: every system a target may switch to.
  toplevels = lib.genAttrs targets (
    name: lib.genAttrs markers (marker: (fleetWith marker).${name}.config.system.build.toplevel)
  );

  pathInput = src: "path:${src.outPath}?narHash=${src.narHash}";

  fleet = pkgs.runCommand "lollypops-test-fleet" { } ''
    mkdir $out
    cp ${./fleet}/*.nix $out/
    chmod u+w $out/*.nix
    substituteInPlace $out/flake.nix \
      --replace-fail @nixpkgs@ ${lib.escapeShellArg (pathInput nixpkgs)} \
      --replace-fail @lollypops@ ${lib.escapeShellArg (pathInput self)} \
      --replace-fail @home-manager@ ${lib.escapeShellArg (pathInput homeManager)}
    cp ${pkgs.writeText "network.json" (builtins.toJSON network)} $out/network.json
    echo FIRST > $out/marker
  '';

  sources = [
    nixpkgs.outPath
    self.outPath
    homeManager.outPath
  ];

  target =
    name: extraPaths:
    { ... }:
    {
      imports = [
        ./fleet/common.nix
        ./fleet/${name}.nix
      ];
      virtualisation = {
        memorySize = 2048;
        additionalPaths = builtins.attrValues toplevels.${name} ++ extraPaths;
      };
    };

  deployer =
    { lib, pkgs, ... }:
    {
      nix.settings = {
        experimental-features = [
          "nix-command"
          "flakes"
        ];
        substituters = lib.mkForce [ ];
      };
      environment.systemPackages = [
        pkgs.gnupg
        pkgs.pass
      ];
      programs.ssh.knownHosts.gamma.publicKey = keys.snakeOilPublicKey;
      virtualisation = {
        cores = 2;
        memorySize = 3072;
        additionalPaths =
          sources
          ++ [
            fleet
            self.packages.x86_64-linux.default
            pkgs.stdenvNoCC
          ]
          ++ builtins.attrValues app.tools
          # Local evaluation builds gamma's systems here.
          ++ builtins.attrValues toplevels.gamma;
      };
    };

  # What the Python script needs to know, as JSON.
  facts = {
    inherit fleet;
    lollypops = self.outPath;
    privateKey = keys.snakeOilPrivateKey;
    toplevels = lib.mapAttrs (_: lib.mapAttrs (_: t: "${t}")) toplevels;
    derivations = lib.mapAttrs (_: lib.mapAttrs (_: t: t.drvPath)) toplevels;
  };
in
{
  vm-deploy = pkgs.testers.runNixOSTest {
    name = "lollypops-deploy";

    nodes = {
      inherit deployer;
      # alpha and gamma can evaluate the fleet's inputs; beta gets them from
      # `archive` (and `extra` only from there).
      alpha = target "alpha" sources;
      beta = target "beta" [
        nixpkgs.outPath
        homeManager.outPath
      ];
      gamma = target "gamma" [ ];
    };

    testScript =
      { nodes, ... }:
      # The systems were built for these addresses.
      assert lib.all (
        name: builtins.toJSON nodes.${name}.system.build.networkConfig == builtins.toJSON network.${name}
      ) targets;
      ''
        import json
        facts = json.loads(${builtins.toJSON (builtins.toJSON facts)})
      ''
      + builtins.readFile ./deploy.py;
  };
}
