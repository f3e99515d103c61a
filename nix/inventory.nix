# The inventory: the document the runner reads (go/internal/config, version
# 1), projected from every host's lollypops options one field at a time, and
# from every home-manager configuration's (nix/project-home.nix).
#
# This is the only place that produces it. Each field is named here, so a new
# option reaches the runner only when it is added to this projection and to
# the Go types (tests/nix and go/internal/config/nix_test.go check both ways).
{ lib }:
configFlake:
let
  inherit (lib)
    concatMap
    concatMapStrings
    filterAttrs
    mapAttrs
    mapAttrsToList
    warnIf
    ;

  tasks = import ./tasks.nix { inherit lib; };

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

  # The home-manager users that import lollypops.hmModule, by name.
  hmUsers =
    config:
    filterAttrs (_: user: user ? lollypops) (config.home-manager.users or { });

  secret = hmUser: s: {
    inherit (s)
      name
      cmd
      path
      owner
      group
      mode
      upload-at
      allow-empty
      ;
    home-manager-user = hmUser;
  };

  secretsOf = hmUser: cfg: mapAttrsToList (_: secret hmUser) cfg.secrets.files;

  assertionsOf =
    config:
    config.lollypops.assertions
    ++ concatMap (
      user:
      map (a: a // { message = "home-manager.users.${user}.${a.message}"; })
        (config.home-manager.users.${user}.lollypops.assertions)
    ) (builtins.attrNames (hmUsers config));

  warningsOf =
    config:
    config.lollypops.warnings
    ++ concatMap (
      user: map (w: "home-manager.users.${user}.${w}") config.home-manager.users.${user}.lollypops.warnings
    ) (builtins.attrNames (hmUsers config));

  checked =
    name: config: value:
    let
      failed = builtins.filter (a: !a.assertion) (assertionsOf config);
    in
    if failed == [ ] then
      lib.foldr (w: lib.warn "lollypops: nixosConfigurations.${name}: ${w}") value (warningsOf config)
    else
      throw "\nFailed assertions in nixosConfigurations.${name}:\n${
        concatMapStrings (a: "- ${a.message}\n") failed
      }";

  host =
    name: config:
    let
      cfg = config.lollypops;
      d = cfg.deployment;
    in
    checked name config {
      inherit flake;
      deployment = {
        inherit (d)
          config-dir
          deploy-method
          local-evaluation
          tags
          ;
        ssh = {
          inherit (d.ssh)
            host
            user
            command
            opts
            host-key-policy
            host-key
            ;
        };
        sudo = {
          inherit (d.sudo) enable command opts;
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
      };
      secrets = {
        inherit (cfg.secrets) remove-stale;
        # The host's secrets by name, then each home-manager user's.
        files =
          secretsOf null cfg
          ++ concatMap (user: secretsOf user (hmUsers config).${user}.lollypops) (
            builtins.attrNames (hmUsers config)
          );
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
    };
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
