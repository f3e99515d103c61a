# The `lollypops.secrets` options, shared by the NixOS and the home-manager
# module: only their defaults differ, and the caller passes those.
#
# Secret values never enter Nix: the options hold the command that prints a
# secret on the deployer and where its output goes on the host.
{ lib }:
let
  inherit (lib)
    literalExpression
    literalMD
    mkOption
    showOption
    types
    ;
  types' = import ./types.nix { inherit lib; };

  # The unit of a secret: lollypops-secret-<name>.service, the name escaped
  # as `systemd-escape` does (not --path): "/" becomes "-", every other
  # character but ASCII letters, digits, ":", "_" and a "." that is not
  # first becomes \xHH. The escaping can be undone, so two names never
  # share a unit. null for a name systemd cannot take: characters outside
  # printable ASCII (Nix cannot tell their bytes), or too long a name.
  unitNameOf =
    name:
    let
      hex = c: lib.strings.escapeC [ c ] c;
      escapeChar =
        i: c:
        if c == "/" then
          "-"
        else if builtins.match "[A-Za-z0-9:_]" c != null || (c == "." && i > 0) then
          c
        else
          hex c;
      escaped = lib.concatStrings (lib.imap0 escapeChar (lib.stringToCharacters name));
      unit = "lollypops-secret-${escaped}.service";
    in
    if builtins.match "[ -~]+" name != null && builtins.stringLength unit <= 255 then unit else null;

  # units: whether secrets have restartUnits, reloadUnits and a unit (NixOS
  # only: a home-manager user's units are the user's systemd's);
  # volatile: whether a path is on a tmpfs (NixOS only).
  secretModule =
    {
      cfg,
      owner,
      group,
      units,
      volatile,
    }:
    {
      name,
      config,
      options,
      ...
    }:
    {
      imports = [
        # lollypops' README spells the group `groups`; accept it, quietly.
        (lib.doRename {
          from = [ "groups" ];
          to = [ "group" ];
          visible = false;
          warn = false;
          use = lib.id;
        })
        # Its module (since 2025) calls it `group-name`: accept it, with a
        # warning (below: doRename's own needs a top-level `warnings`).
        (lib.doRename {
          from = [ "group-name" ];
          to = [ "group" ];
          visible = false;
          warn = false;
          use = lib.id;
        })
      ];

      options = {
        name = mkOption {
          type = types'.nonEmptyLine;
          default = name;
          defaultText = literalMD "the attribute name";
          example = "nixos-secrets/host1/backup-key";
          description = ''
            Name of the secret. It names the file under `default-dir` and the
            entry the default `cmd` asks `pass` for; it may contain `/`.
          '';
        };

        cmd = mkOption {
          type = types'.command;
          default = "${cfg.default-cmd} ${lib.escapeShellArg (cfg.cmd-name-prefix + config.name)}";
          defaultText = literalExpression ''"''${default-cmd} ''${lib.escapeShellArg (cmd-name-prefix + name)}"'';
          example = "bw get password my-secret-token";
          description = ''
            Shell command that prints the secret on its standard output. It runs
            on the machine that runs lollypops (the deployer), from the
            directory lollypops was started in, with the deployer's `PATH`:
            tools such as `pass` are the deployer's, whatever the host's system
            is. Its output is written to the host byte for byte, over ssh,
            without passing through a command line, a file on the deployer or
            the Nix store. The command fails the deployment when it exits
            non-zero, or prints nothing (unless `allow-empty` is set).
          '';
        };

        path = mkOption {
          type = types'.absolutePath;
          default = "${cfg.default-dir}/${config.name}";
          defaultText = literalExpression ''"''${default-dir}/''${name}"'';
          example = "/var/lib/backupconfig/password";
          description = ''
            Where the secret is written on the host. Missing parent directories
            are created.
          '';
        };

        owner = mkOption (
          {
            type = types'.userName;
            example = "joe";
            description = "User that owns the secret's file on the host.";
          }
          // owner
        );

        group = mkOption (
          {
            type = types'.groupName;
            example = "mygroup";
            description = ''
              Group of the secret's file on the host. Also accepted as `groups`,
              the spelling of lollypops' original README, and as `group-name`
              (the original's module), with a warning.
            '';
          }
          // group
        );

        mode = mkOption {
          type = types'.mode;
          default = "0400";
          example = "0440";
          description = "Permissions of the secret's file on the host, in octal.";
        };

        upload-at = mkOption {
          type = types.enum [
            "pre-activation"
            "post-activation"
          ];
          default = "pre-activation";
          example = "post-activation";
          description = ''
            When the secret is written: before the new configuration is
            activated (so that services find it when they start), or after
            (for an owner or group that the activation itself creates).
          '';
        };

      }
      // lib.optionalAttrs units {
        restartUnits = mkOption {
          type = types.listOf types'.unitName;
          default = [ ];
          example = [ "nginx.service" ];
          description = ''
            Units to restart when a deployment changes this secret: when the
            value written differs from the one lollypops wrote at its path
            before (by a checksum kept on the host), or is written there for
            the first time. They are restarted on the host right after the
            secret is written (after the activation for
            `upload-at = "post-activation"`), and only if they are running
            (`systemctl try-restart`): a stopped unit stays stopped, and a
            unit that the coming activation adds is left to it. A unit
            listed by several changed secrets is restarted once. A secret
            whose value is unchanged restarts nothing. See
            [Rotation](secrets.md#rotation-restarting-the-units-that-read-a-secret).
          '';
        };

        unit = mkOption {
          type = types.bool;
          default = volatile config.path && unitNameOf config.name != null;
          defaultText = literalMD "`true` when `path` is on a tmpfs (see the description)";
          example = false;
          description = ''
            Whether the host has a unit for this secret, named `unitName`
            (`lollypops-secret-<name>.service`), that is active while the
            secret's file exists. lollypops renames a secret into place only
            once it is complete, so a service ordered after the unit
            (`after` and `wants`) starts only once its secret is there: after
            a reboot that emptied a tmpfs, it waits for the next deploy. The
            unit never reads the secret: it looks, every half second, whether
            the file exists.

            On by default when the secret's `path` is on a tmpfs or a ramfs,
            which a reboot empties: under `/run`, or under a `fileSystems`
            mount point whose `fsType` is `tmpfs` or `ramfs` (the longest
            mount point that holds the path decides), unless the name cannot
            name a unit (see `unitName`). NixOS only: a home-manager user's
            secrets have no unit. See
            [Services that wait for their secret](secrets.md#services-that-wait-for-their-secret).
          '';
        };

        unitName = mkOption {
          type = types.str;
          readOnly = true;
          default =
            let
              unit = unitNameOf config.name;
            in
            if unit != null then
              unit
            else
              throw "${showOption [ "lollypops" "secrets" "files" name "unitName" ]}: the name ${builtins.toJSON config.name} cannot name a systemd unit (characters outside printable ASCII, or too long).";
          defaultText = literalMD "`\"lollypops-secret-<name>.service\"`, the name escaped";
          example = "lollypops-secret-nixos\\x2dsecrets-host1-backup\\x2dkey.service";
          description = ''
            The name of the secret's unit (when `unit` is set), for a service
            that needs the secret:
            `after = [ config.lollypops.secrets.files.<name>.unitName ]` and
            the same in `wants`. The name is escaped as `systemd-escape`
            does: `/` becomes `-`, and every character but ASCII letters,
            digits, `:`, `_` and a `.` that is not first becomes `\xHH`
            (`db-pass` is `lollypops-secret-db\x2dpass.service`), so two
            secrets never share a unit. A name with characters outside
            printable ASCII, or too long for systemd (255 characters in all),
            has no unit.
          '';
        };

        reloadUnits = mkOption {
          type = types.listOf types'.unitName;
          default = [ ];
          example = [ "nginx.service" ];
          description = ''
            Units to reload (`systemctl reload`) when a deployment changes
            this secret, if they are running, as `restartUnits` restarts
            them. A unit that is also restarted for a changed secret is only
            restarted. The unit must be able to reload (`ExecReload=`):
            systemd refuses to reload others, which fails the deployment
            after the secret is written.
          '';
        };
      }
      // {
        # doRename defines it too (empty), since it exists.
        warnings = mkOption {
          type = types.listOf types.str;
          internal = true;
          visible = false;
          default = [ ];
          description = "This secret's part of `lollypops.warnings`.";
        };

        allow-empty = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Whether an empty output of `cmd` is a valid secret. By default it
            is an error, which catches a password manager that printed nothing.
          '';
        };
      };

      config.warnings = lib.optional options.group-name.isDefined "${
        showOption [ "lollypops" "secrets" "files" name "group-name" ]
      }: the original lollypops' name; write ${
        showOption [ "lollypops" "secrets" "files" name "group" ]
      } (same meaning).";
    };
in
{
  inherit unitNameOf;

  # The options under `lollypops.secrets`. `defaultDir`, `owner` and `group`
  # are the `default` (and, if computed, `defaultText`) of those options;
  # `units` adds each secret's `restartUnits`, `reloadUnits`, `unit` and
  # `unitName`; `volatile path` says whether `path` is on a tmpfs, which
  # turns `unit` on by default.
  mkOptions =
    {
      cfg,
      defaultDir,
      owner,
      group,
      units ? false,
      volatile ? _: false,
    }:
    {
      default-dir = mkOption (
        {
          type = types'.directory;
          example = "/var/lib/secrets";
          description = "Directory of the secrets that do not set their own `path`.";
        }
        // defaultDir
      );

      default-cmd = mkOption {
        type = types'.command;
        default = "pass";
        example = "gopass show --password";
        description = ''
          The command in front of each secret's name in its default `cmd`,
          which becomes `<default-cmd> <cmd-name-prefix><name>` (the name
          quoted for the shell). It runs on the deployer: a store path here
          (`"''${pkgs.pass}/bin/pass"`, as the original lollypops set it) is
          built for the host's system, which may not run on the deployer.
        '';
      };

      cmd-name-prefix = mkOption {
        type = types'.textLine;
        default = "";
        example = "nixos-secrets/host1/";
        description = ''
          Put in front of each secret's `name` in its default `cmd`, which
          becomes `<default-cmd> <cmd-name-prefix><name>`.
        '';
      };

      files = mkOption {
        type = types.attrsOf (types.submodule (secretModule {
          inherit
            cfg
            owner
            group
            units
            volatile
            ;
        }));
        default = { };
        example = literalExpression ''
          {
            # From pass, at <default-dir>/db-password, 0400 by default.
            db-password = { };
            # From another password manager, for a service user.
            api-token = {
              cmd = "bw get password api-token";
              path = "/var/lib/app/token";
              owner = "app";
              group = "app";
              mode = "0440";
            };
          }
        '';
        description = ''
          Secrets to write on the host, by name. Each is the output of a
          command run on the deployer; its value never enters the Nix store.
          They are written in the order of their names.
        '';
      };
    };

  # `secrets.remove-stale` of a NixOS host, and of a home-manager
  # configuration deployed on its own (a home inside a NixOS host follows
  # the host's).
  removeStaleOption = mkOption {
    type = types.bool;
    default = false;
    description = ''
      Whether to delete the files that lollypops wrote to the host in an
      earlier deployment and that are no longer configured. lollypops
      keeps a list of the files it writes on the host for this; it never
      deletes a file it did not write.
    '';
  };

  # The warnings of `cfg`'s secrets, in the order of their names.
  warnings = cfg: lib.concatMap (f: f.warnings) (builtins.attrValues cfg.files);

  # Assertions on `cfg` (a module's `config.lollypops.secrets`); `prefix` is
  # the option path of `cfg`, as a list.
  assertions =
    prefix: cfg:
    let
      byPath = lib.groupBy (n: cfg.files.${n}.path) (builtins.attrNames cfg.files);
      clashes = lib.filterAttrs (_: names: builtins.length names > 1) byPath;
    in
    lib.mapAttrsToList (path: names: {
      assertion = false;
      message = "${showOption (prefix ++ [ "files" (builtins.elemAt names 1) "path" ])}: \"${path}\" is also the path of ${showOption (prefix ++ [ "files" (builtins.head names) ])}; each secret needs its own file.";
    }) clashes
    ++ lib.mapAttrsToList (n: s: {
      # The name first: `unit`'s default reads the fileSystems, which
      # `nix run` (it checks the assertions) need not evaluate.
      assertion = unitNameOf s.name != null || !(s.unit or false);
      message = "${showOption (prefix ++ [ "files" n "unit" ])}: the name ${builtins.toJSON s.name} cannot name a systemd unit (characters outside printable ASCII, or too long); set unit = false, or rename the secret.";
    }) cfg.files;
}
