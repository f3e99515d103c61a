# Stands in for home-manager's NixOS module in tests/nix.
{ lib, ... }:
{
  imports = [ ../../../home-manager-nixos.nix ];
  options.home-manager = {
    useGlobalPkgs = lib.mkEnableOption "";
    useUserPackages = lib.mkEnableOption "";
  };
}
