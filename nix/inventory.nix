# The inventory of a whole flake: the document the runner reads
# (go/internal/config, version 1), with every host's entry (nix/entry.nix)
# and every home-manager configuration's (nix/project-home.nix).
#
# The app does not bake it (the runner evaluates the hosts a command needs,
# go/internal/nixeval); the evaluation tests and `--inventory` use it.
{ lib }:
configFlake:
let
  inherit (lib) filterAttrs mapAttrs warnIf;

  version = 1;

  hosts = configFlake.nixosConfigurations or { };

  # A host without the module is left out rather than breaking the whole
  # run: the flake may hold installers, containers, other tools' hosts.
  deployable = filterAttrs (
    name: host:
    let
      has = host.config ? lollypops;
    in
    warnIf (!has)
      "lollypops: nixosConfigurations.${name} does not import lollypops.nixosModules.lollypops; it has no tasks."
      has
  ) hosts;

  flake =
    if configFlake ? outPath then
      "${configFlake.outPath}"
    else
      throw "lollypops: configFlake has no outPath; pass the flake itself, usually `self`, as in `lollypops.apps.<system>.default { configFlake = self; }`.";

  # Each host's entry, from the module itself (nix/entry.nix).
  host =
    name: config:
    if config.lollypops ? inventory-entry then
      config.lollypops.inventory-entry { inherit name flake; }
    else
      throw "lollypops: nixosConfigurations.${name} imports a lollypops module of another revision than this runner's; update the lollypops flake input of the flake the host comes from.";
  # Home-manager configurations deployed on their own: those that import
  # lollypops.homeModules.default, each projected by nix/project-home.nix.
  homes = filterAttrs (
    name: home:
    let
      has = home ? config && home.config ? lollypops;
    in
    warnIf (!has)
      "lollypops: homeConfigurations.${name} does not import lollypops.homeModules.default; it has no tasks."
      has
  ) (configFlake.homeConfigurations or { });
in
{
  inherit version;
  hosts = mapAttrs (name: h: host name h.config) deployable;
  homes = mapAttrs (name: home: import ./project-home.nix { inherit name home flake; }) homes;
}
