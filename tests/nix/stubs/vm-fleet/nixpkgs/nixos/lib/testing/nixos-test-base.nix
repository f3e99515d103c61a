# Stands in for nixpkgs' module of that name when tests/nix/eval.nix
# evaluates the VM test's fleet (tests/vm/fleet/hosts.nix) without nixpkgs:
# it accepts any NixOS setting the fleet makes beyond lollypops' own and
# gives the few `pkgs` attributes the fleet uses.
{ lib, ... }:
{
  freeformType = lib.types.lazyAttrsOf lib.types.raw;
  _module.args.pkgs = {
    path = ../../..;
    writeText = name: _: "/nix/store/00000000000000000000000000000000-${name}";
  };
}
