# One host's entry in the inventory: the document the runner reads
# (go/internal/config, version 1), projected from the host's lollypops
# options one field at a time.
#
# The NixOS module offers it as `config.lollypops.inventory-entry`, so
# that the runner can evaluate one host at a time, in a pure `nix eval`
# that cannot import files (go/internal/nixeval), and nix/inventory.nix the
# whole fleet, from the same code. Each field is named here, so a new option
# reaches the runner only when it is added to this projection and to the Go
# types (tests/nix and go/internal/config/nix_test.go check both ways).
{ lib }:
# name: the host's attribute in nixosConfigurations, for messages;
# flake: the store path of the flake the host is deployed from.
config:
{ name, flake }:
let
  inherit (lib) concatMap concatMapStrings filterAttrs mapAttrs mapAttrsToList;

  tasks = import ./tasks.nix { inherit lib; };

  cfg = config.lollypops;
  d = cfg.deployment;

  # The home-manager users that import lollypops' home-manager module.
  hmUsers = filterAttrs (_: user: user ? lollypops) (config.home-manager.users or { });

  parts = import ./entry-parts.nix;
  inherit (parts) secret;

  secretsOf = hmUser: c: mapAttrsToList (_: secret hmUser) c.secrets.files;

  assertions =
    cfg.assertions
    ++ concatMap (
      user:
      map (a: a // { message = "home-manager.users.${user}.${a.message}"; }) hmUsers.${user}.lollypops.assertions
    ) (builtins.attrNames hmUsers);

  warnings =
    cfg.warnings
    ++ concatMap (user: map (w: "home-manager.users.${user}.${w}") hmUsers.${user}.lollypops.warnings) (
      builtins.attrNames hmUsers
    );

  failed = builtins.filter (a: !a.assertion) assertions;

  checked =
    value:
    if failed == [ ] then
      lib.foldr (w: lib.warn "lollypops: nixosConfigurations.${name}: ${w}") value warnings
    else
      throw "\nFailed assertions in nixosConfigurations.${name}:\n${
        concatMapStrings (a: "- ${a.message}\n") failed
      }";
in
checked {
  inherit flake;
  deployment = parts.reach d // {
    inherit (d)
      config-dir
      deploy-method
      local-evaluation
      tags
      ;
    build-host =
      if d.build-host == null then
        null
      else
        {
          inherit (d.build-host)
            host
            user
            opts
            host-key
            host-key-policy
            ;
        };
    rollback = {
      inherit (d.rollback) enable confirm-timeout;
    };
    health-checks = mapAttrs (_: c: {
      inherit (c)
        cmd
        url
        status
        timeout
        retries
        interval
        ;
    }) d.health-checks;
    reboot = {
      inherit (d.reboot) enable timeout;
    };
    activation = {
      inherit (d.activation)
        install-bootloader
        specialisation
        keep-specialisation
        profile-name
        ;
    };
  };
  secrets = {
    inherit (cfg.secrets) remove-stale;
    # The host's secrets by name, then each home-manager user's.
    files =
      secretsOf null cfg
      ++ concatMap (user: secretsOf user hmUsers.${user}.lollypops) (builtins.attrNames hmUsers);
  };
  inherit (cfg) tasks;
  # A task with deps that are no task of the host fails when it runs
  # (nix/tasks.nix).
  extraTasks = mapAttrs (
    task: t:
    let
      unknown = tasks.unknownDeps cfg task;
    in
    {
      inherit (t) desc dir;
      deps = lib.subtractLists unknown t.deps;
      cmds = if unknown == [ ] then t.cmds else tasks.failingCmds name cfg task;
    }
  ) cfg.extraTasks;
}
