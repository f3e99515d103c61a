# One entry of the inventory's `homes` (go/internal/config, version 1): a
# home-manager configuration deployed on its own, projected from its
# lollypops options one field at a time.
#
#   import ./project-home.nix { name = "alice@host1"; home = self.homeConfigurations."alice@host1"; }
#
# `home` is what home-manager's `homeManagerConfiguration` returns: its
# `config` and its `activationPackage`. Other arguments (such as `flake`)
# are accepted and unused: the activation package holds the whole
# configuration, so the host needs no flake.
#
# Builtins only (no nixpkgs lib): the home-manager module offers it as
# `lollypops.inventory-entry`, which the runner evaluates in a pure
# `nix eval` (go/internal/nixeval).
{ name, home, ... }:
let
  config = home.config;
  cfg = config.lollypops;
  d = cfg.deployment;
  where = "homeConfigurations.${builtins.toJSON name}";

  failed = builtins.filter (a: !a.assertion) cfg.assertions;

  checked =
    value:
    if failed == [ ] then
      builtins.foldl' (v: w: builtins.trace "warning: lollypops: ${where}: ${w}" v) value cfg.warnings
    else
      throw "\nFailed assertions in ${where}:\n${
        builtins.concatStringsSep "" (map (a: "- ${a.message}\n") failed)
      }";

  parts = import ./entry-parts.nix;
  # The home's own secrets: not those of a user inside a NixOS host.
  secret = parts.secret null;
in
if !(config ? lollypops) then
  throw "lollypops: ${where} does not import lollypops.homeModules.default; it has no tasks."
else
  checked {
    # The derivation, not its output: listing and planning build nothing;
    # the rebuild builds it on the deployer (nix-store --realise).
    activation-package = home.activationPackage.drvPath;
    home-directory = config.home.homeDirectory;
    deployment = parts.reach d // {
      inherit (d) tags;
    };
    secrets = {
      inherit (cfg.secrets) remove-stale;
      files = map secret (builtins.attrValues cfg.secrets.files);
    };
    inherit (cfg) tasks;
    extraTasks = builtins.mapAttrs (_: t: {
      inherit (t)
        desc
        cmds
        deps
        dir
        ;
    }) cfg.extraTasks;
  }
