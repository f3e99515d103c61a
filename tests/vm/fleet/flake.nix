# The user's flake in the VM test, shaped like lollypops' README example.
# ../default.nix replaces the @…@ inputs with `path:` references to the
# store paths the test already has, so it locks and evaluates offline.
{
  inputs = {
    nixpkgs.url = "@nixpkgs@";
    lollypops = {
      url = "@lollypops@";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    home-manager = {
      url = "@home-manager@";
      flake = false;
    };
    # Created by the test on the deployer only: a target can evaluate beta
    # only if `archive` brought it there.
    extra = {
      url = "path:/root/extra-input";
      flake = false;
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      lollypops,
      home-manager,
      extra,
    }:
    {
      nixosConfigurations = import ./hosts.nix {
        inherit
          nixpkgs
          lollypops
          home-manager
          extra
          ;
        network = nixpkgs.lib.importJSON ./network.json;
        marker = nixpkgs.lib.fileContents ./marker;
      };

      apps.x86_64-linux.default = lollypops.apps.x86_64-linux.default { configFlake = self; };
    };
}
