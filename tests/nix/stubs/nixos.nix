# Stand-ins for the NixOS options that lollypops' NixOS module reads or
# sets, so that the real module system evaluates it without nixpkgs.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    networking.hostName = mkOption {
      type = types.str;
      default = "nixos";
    };
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    users.users = mkOption {
      type = types.attrsOf (
        types.submodule {
          # The VM test's fleet sets more of a user.
          freeformType = types.lazyAttrsOf types.raw;
          options.group = mkOption {
            type = types.str;
            default = "users";
          };
        }
      );
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf types.raw;
      default = { };
    };
  };
}
