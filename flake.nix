{
  description = "lollypops: parallel, stateless NixOS deployment, configured in Nix";

  # nixpkgs is the only input users lock. What only the tests need
  # (home-manager) is pinned inside tests/vm.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      linux = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      systems = linux ++ [
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forSystems = lib.genAttrs systems;
      pkgsFor = system: nixpkgs.legacyPackages.${system};

      # The Go that go/go.mod's `go` line (go-task's minimum) asks for.
      goMin = builtins.head (builtins.match ".*\ngo ([0-9.]+)\n.*" (builtins.readFile ./go/go.mod));
      buildGoModuleFor =
        pkgs:
        if lib.versionAtLeast pkgs.go.version goMin then
          pkgs.buildGoModule
        else if lib.versionAtLeast (pkgs.go_1_26.version or "0") goMin then
          pkgs.buildGo126Module
        else
          throw "lollypops needs Go >= ${goMin}, which this nixpkgs does not have (go ${pkgs.go.version}); use a newer nixpkgs.";

      appsFor =
        system:
        import ./nix/apps.nix {
          inherit lib;
          pkgs = pkgsFor system;
          runner = self.packages.${system}.default;
        };
    in
    {
      nixosModules.lollypops = ./nix/module.nix;
      nixosModules.default = self.nixosModules.lollypops;
      hmModule = ./nix/hm-module.nix;
      homeModules.default = self.hmModule;

      packages = forSystems (
        system:
        let
          pkgs = pkgsFor system;
        in
        {
          default = pkgs.callPackage ./nix/package.nix { buildGoModule = buildGoModuleFor pkgs; };
        }
      );

      # A valid app on its own (`nix run github:…/lollypops` lists no hosts)
      # and a function: `lollypops.apps.<system>.default { configFlake = self; }`,
      # as lollypops' README writes it. Users' flakes get a plain app. Here,
      # `nix flake check` of Nix >= 2.25 rejects the `__functor` attribute
      # ("has unsupported attribute"); build the checks with
      # `nix build .#checks.<system>.<name>` instead.
      apps = forSystems (system: {
        default = (appsFor system).default;
      });

      checks = forSystems (
        system:
        let
          pkgs = pkgsFor system;
          generated = pkgs.writeText "options.md" (import ./nix/options-doc.nix { inherit lib; });
        in
        {
          package = self.packages.${system}.default;
          options-doc = pkgs.runCommand "lollypops-options-doc-check" { } ''
            if ! diff -u ${./docs/options.md} ${generated}; then
              echo "docs/options.md is stale: run nix/update-options-doc.sh" >&2
              exit 1
            fi
            touch $out
          '';
        }
        // lib.optionalAttrs (system == "x86_64-linux") (
          import ./tests/vm {
            inherit pkgs self nixpkgs;
            app = appsFor system;
          }
        )
      );

      formatter = forSystems (system: (pkgsFor system).nixfmt-tree or (pkgsFor system).nixfmt);
    };
}
