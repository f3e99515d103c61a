# Stand-ins for the home-manager options that lollypops' home-manager
# module reads or sets.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    home.username = mkOption { type = types.str; };
    home.homeDirectory = mkOption { type = types.str; };
    home.stateVersion = mkOption {
      type = types.str;
      default = "";
    };
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
  };
}
