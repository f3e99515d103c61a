{
  description = "lollypops: parallel, stateless NixOS deployment, configured in Nix";

  # nixpkgs provides everything; users usually make it follow theirs. What
  # only the tests need (home-manager) is pinned inside tests/vm.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
  # Only the Go that builds the runner, when nixpkgs' own is older than
  # go/go.mod asks (a followed nixpkgs of an older release): the nixpkgs
  # this flake pins. Never fetched otherwise.
  inputs.nixpkgs-go.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    {
      self,
      nixpkgs,
      nixpkgs-go,
    }:
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
      goVersionOf = pkgs: pkgs.go.version or "0";
      buildGoModuleOf =
        pkgs:
        if lib.versionAtLeast (goVersionOf pkgs) goMin then
          pkgs.buildGoModule
        else if lib.versionAtLeast (pkgs.go_1_26.version or "0") goMin then
          pkgs.buildGo126Module
        else
          null;

      # The runner, built by nixpkgs when its Go is recent enough, else
      # wholly by nixpkgs-go (its Go and its build tools).
      runnerFor =
        system:
        let
          pkgs = pkgsFor system;
          goPkgs = nixpkgs-go.legacyPackages.${system};
          builder =
            if buildGoModuleOf pkgs != null then
              pkgs
            else if buildGoModuleOf goPkgs != null then
              goPkgs
            else
              throw "lollypops needs Go >= ${goMin} to build its runner: nixpkgs has go ${goVersionOf pkgs}, and the nixpkgs-go input go ${goVersionOf goPkgs}; update nixpkgs, or drop `lollypops.inputs.nixpkgs-go.follows` so that lollypops' own pin builds it.";
        in
        builder.callPackage ./nix/package.nix { buildGoModule = buildGoModuleOf builder; };

      appsFor =
        system:
        import ./nix/apps.nix {
          inherit lib;
          pkgs = pkgsFor system;
          runner = runnerFor system;
        };
    in
    {
      nixosModules.lollypops = ./nix/module.nix;
      nixosModules.default = self.nixosModules.lollypops;
      # The name home-manager's flake-parts module (and flake schemas) give
      # home-manager modules; Nix's own `nix flake check` knows none.
      homeModules.lollypops = ./nix/hm-module.nix;
      homeModules.default = self.homeModules.lollypops;
      # The original lollypops' name: deprecated.
      hmModule = lib.warn "lollypops: `lollypops.hmModule` is deprecated; import `lollypops.homeModules.default` (the same module)." self.homeModules.lollypops;

      # The runner; `.override { configFlake = self; }` gives it the
      # inventory of `self`'s hosts (nix/default-package.nix).
      packages = forSystems (
        system:
        let
          pkgs = pkgsFor system;
        in
        {
          default = pkgs.callPackage ./nix/default-package.nix {
            inherit pkgs;
            runner = runnerFor system;
          };
        }
      );

      # A valid app on its own (`nix run github:…/lollypops` lists no hosts)
      # and a function: `lollypops.apps.<system>.default { configFlake = self; }`,
      # as lollypops' README writes it. Users' flakes get a plain app. Here,
      # `nix flake check` of Nix >= 2.25 rejects the `__functor` attribute
      # ("has unsupported attribute"), and no value can be both an app and a
      # function without it: build the checks with
      # `nix build .#checks.<system>.<name>` instead (docs/development.md).
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
