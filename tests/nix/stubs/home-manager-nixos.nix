# A stand-in for home-manager's NixOS module: `home-manager.users.<name>`
# evaluates home-manager modules (class "homeManager") with `osConfig`, as
# the real one does.
{ config, lib, ... }:
{
  options.home-manager.users = lib.mkOption {
    type = lib.types.attrsOf (
      lib.types.submoduleWith {
        class = "homeManager";
        specialArgs.osConfig = config;
        modules = [
          ./home-manager.nix
          (
            { name, ... }:
            {
              home.username = lib.mkDefault name;
              home.homeDirectory = lib.mkDefault "/home/${name}";
            }
          )
        ];
      }
    );
    default = { };
  };
}
