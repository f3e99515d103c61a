# Stand-ins for the NixOS options that lollypops' secret units
# (nix/secret-units.nix) set or read: freeform units, as far as the checks
# look at them, and the file systems that decide their default. Apart from
# stubs/nixos.nix, because benchnix's synthetic NixOS declares its own
# systemd.services.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    systemd.services = mkOption {
      type = types.attrsOf (types.submodule { freeformType = types.lazyAttrsOf types.raw; });
      default = { };
    };
    systemd.paths = mkOption {
      type = types.attrsOf (types.submodule { freeformType = types.lazyAttrsOf types.raw; });
      default = { };
    };
    fileSystems = mkOption {
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options.mountPoint = mkOption {
              type = types.str;
              default = name;
            };
            options.fsType = mkOption {
              type = types.str;
              default = "auto";
            };
          }
        )
      );
      default = { };
    };
  };
}
