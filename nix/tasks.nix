# `lollypops.tasks` and `lollypops.extraTasks`: the steps of a host's
# deployment, and the shell tasks users add or replace built-ins with.
{ lib }:
let
  inherit (lib)
    concatStringsSep
    mkOption
    showOption
    types
    ;
  types' = import ./types.nix { inherit lib; };

  # The runner's own steps (go/internal/config BuiltinTasks).
  builtinTasks = [
    "check-vars"
    "deploy-flake"
    "deploy-secrets"
    "rebuild"
    "diff"
  ];

  # A home-manager configuration deployed on its own has no flake on the
  # host and no system to diff (go/internal/config HomeBuiltinTasks).
  homeBuiltinTasks = [
    "check-vars"
    "deploy-secrets"
    "rebuild"
  ];

  extraTaskModule = {
    options = {
      desc = mkOption {
        type = types'.textLine;
        default = "";
        example = "Rebuild with a local build";
        description = "Description shown by `--list`; tasks without one appear in `--list-all` only.";
      };

      cmds = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "echo 'this is a task'" ];
        description = ''
          Shell commands, run one after the other on the deployer; the first
          that fails fails the task. They can use the host's variables
          (`HOSTNAME`, `REMOTE_HOST`, `REMOTE_USER`, `REMOTE_CONFIG_DIR`, ...),
          as `{{.REMOTE_CONFIG_DIR}}`: each is quoted shell words, for use
          unquoted. The raw value of each one-word variable is in the
          environment, as `"$LOLLYPOPS_REMOTE_CONFIG_DIR"`.
        '';
      };

      deps = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "example" ];
        description = "Tasks of the same host that run, in parallel, before this one.";
      };

      dir = mkOption {
        type = types'.taskDir;
        default = ".";
        description = ''
          Directory the commands run in; a relative one is taken from the
          directory lollypops was started in.
        '';
      };
    };
  };

  opt = path: showOption ([ "lollypops" ] ++ path);

  knownWith = builtinList: cfg: lib.unique (builtinList ++ builtins.attrNames cfg.extraTasks);
  known = knownWith builtinTasks;
  knownTextOf = cfg: concatStringsSep ", " (known cfg);

  unknownDepsWith =
    builtinList: cfg: name:
    builtins.filter (d: !builtins.elem d (knownWith builtinList cfg)) cfg.extraTasks.${name}.deps;
  unknownDeps = unknownDepsWith builtinTasks;

  unknownDepsText =
    cfg: name:
    let
      missing = unknownDeps cfg name;
    in
    "${opt [ "extraTasks" name "deps" ]}: unknown task${
      lib.optionalString (builtins.length missing > 1) "s"
    } ${concatStringsSep ", " (map builtins.toJSON missing)}; known tasks of this host: ${knownTextOf cfg}";

  # Assertions on a module's `config.lollypops`, whose built-in steps are
  # `builtinList`.
  assertionsWith =
    builtinList: cfg:
    let
      knownText = concatStringsSep ", " (knownWith builtinList cfg);
      unknown = path: name: {
        assertion = builtins.elem name (knownWith builtinList cfg);
        message = "${opt path}: unknown task \"${name}\"; known tasks of this host: ${knownText}; define new ones in lollypops.extraTasks.";
      };
      order = lib.toposort (
        a: b: builtins.elem a (cfg.extraTasks.${b}.deps)
      ) (builtins.attrNames cfg.extraTasks);
    in
    map (unknown [ "tasks" ]) cfg.tasks
    ++ lib.imap0 (i: name: {
      assertion = !builtins.elem name (lib.take i cfg.tasks);
      message = "${opt [ "tasks" ]}: \"${name}\" is listed twice.";
    }) cfg.tasks
    ++ lib.concatLists (
      lib.mapAttrsToList (
        name: task:
        [
          {
            assertion = types'.isTaskName name;
            message = "${opt [ "extraTasks" name ]}: a task name can only use letters, digits, '_', '.' and '-' (and cannot start with '.' or '-').";
          }
        ]
        ++ [
          {
            assertion = !builtins.elem name task.deps;
            message = "${opt [ "extraTasks" name "deps" ]}: the task depends on itself.";
          }
        ]
      ) cfg.extraTasks
    )
    ++ [
      {
        assertion = order ? result;
        message = "${opt [ "extraTasks" ]}: the deps form a cycle: ${
          concatStringsSep " -> " (order.cycle or [ ] ++ lib.take 1 (order.cycle or [ ]))
        }.";
      }
    ];
in
{
  tasksOption = mkOption {
    type = types.listOf types.str;
    default = [
      "deploy-flake"
      "deploy-secrets"
      "rebuild"
    ];
    example = [
      "deploy-secrets"
      "example"
      "rebuild"
    ];
    description = ''
      The tasks that deploying the host runs, one after the other: built-in
      steps (`deploy-flake`, `deploy-secrets`, `rebuild`) or names of
      `extraTasks`.
    '';
  };

  extraTasksOption = mkOption {
    type = types.attrsOf (types.submodule extraTaskModule);
    default = { };
    example = lib.literalExpression ''
      {
        example = {
          desc = "An example task";
          cmds = [ "echo 'this is a task'" ];
        };
        # Replaces the built-in step of the same name.
        rebuild = {
          deps = [ "example" ];
          cmds = [ "nixos-rebuild switch --flake .#example-host --target-host root@example-host" ];
        };
      }
    '';
    description = ''
      Tasks of the host, by name, in addition to the built-in steps; a task
      named like a built-in step replaces it.
    '';
  };

  # The deps of extra task `name` that are no task of the host. The
  # original lollypops accepted them and go-task failed when the task ran;
  # here too the task is projected to fail when it runs (with this host's
  # other tasks unaffected), and evaluating the host warns.
  inherit unknownDeps;

  # What running extra task `name` of `host` does when it has unknown deps.
  failingCmds =
    host: cfg: name:
    [
      "echo ${
        lib.escapeShellArg "lollypops: ${host}:${name} cannot run: ${unknownDepsText cfg name}"
      } >&2; exit 1"
    ];

  warnings =
    cfg:
    lib.concatMap (
      name:
      lib.optional (unknownDeps cfg name != [ ]) "${unknownDepsText cfg name}; running it fails, the host's other tasks are not affected."
    ) (builtins.attrNames cfg.extraTasks);

  # Assertions on a module's `config.lollypops`.
  assertions = assertionsWith builtinTasks;

  # The tasks of a home-manager configuration deployed on its own: a new
  # kind of target, with no configurations written for the original
  # lollypops to keep working, so an unknown dep is an error here.
  homeTasksOption = mkOption {
    type = types.listOf types.str;
    default = [
      "deploy-secrets"
      "rebuild"
    ];
    example = [
      "deploy-secrets"
      "example"
      "rebuild"
    ];
    description = ''
      When the home-manager configuration is deployed on its own (from
      `homeConfigurations`): the tasks that deploying it runs, one after the
      other: built-in steps (`deploy-secrets`, `rebuild`, which builds the
      activation package here, copies it and activates it as the user) or
      names of `extraTasks`.
    '';
  };

  homeAssertions =
    cfg:
    assertionsWith homeBuiltinTasks cfg
    ++ map (name: {
      assertion = unknownDepsWith homeBuiltinTasks cfg name == [ ];
      message = "${opt [ "extraTasks" name "deps" ]}: unknown tasks ${
        concatStringsSep ", " (map builtins.toJSON (unknownDepsWith homeBuiltinTasks cfg name))
      }; known tasks of this home: ${concatStringsSep ", " (knownWith homeBuiltinTasks cfg)}.";
    }) (builtins.attrNames cfg.extraTasks);
}
