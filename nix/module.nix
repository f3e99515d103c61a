# The lollypops NixOS module: how lollypops reaches the host, the secrets it
# writes there and the tasks it runs for it.
#
# It declares options, which `nix run` reads from every host through
# nix/inventory.nix. The one thing it adds to the system being built is the
# secrets' units (nix/secret-units.nix).
{
  config,
  options,
  lib,
  ...
}:
let
  inherit (lib)
    literalExpression
    mkOption
    showOption
    types
    ;
  types' = import ./types.nix { inherit lib; };
  secrets = import ./secrets-options.nix { inherit lib; };
  tasks = import ./tasks.nix { inherit lib; };
  reach = import ./deployment-options.nix { inherit lib; };

  cfg = config.lollypops;

  reachChecks = reach.checks options cfg.deployment;

  # Whether a path is on a tmpfs or a ramfs, as far as the configuration
  # says: /run (NixOS mounts a tmpfs there, and a ramfs on /run/keys) and
  # the `fileSystems`; the longest mount point that holds the path decides.
  volatile =
    path:
    let
      mounts = [
        {
          mountPoint = "/run";
          fsType = "tmpfs";
        }
      ]
      ++ map (fs: { inherit (fs) mountPoint fsType; }) (builtins.attrValues (config.fileSystems or { }));
      holds = m: m.mountPoint == "/" || path == m.mountPoint || lib.hasPrefix "${m.mountPoint}/" path;
      deepest = lib.foldl' (
        a: m:
        if holds m && (a == null || builtins.stringLength m.mountPoint >= builtins.stringLength a.mountPoint) then m else a
      ) null mounts;
    in
    deepest != null
    && builtins.elem deepest.fsType [
      "tmpfs"
      "ramfs"
    ];

  # Written as for the original lollypops: what it meant, with a warning.
  compatWarnings =
    lib.optional (cfg.deployment.group != null) "${showOption [ "lollypops" "deployment" "group" ]}: the original lollypops' single group is a tag here: write lollypops.deployment.tags = [ ${builtins.toJSON cfg.deployment.group} ] and select its hosts with `--on @${cfg.deployment.group}`."
    ++ reachChecks.warnings;

  deploymentAssertions =
    reachChecks.assertions
    ++ [
      {
        assertion = cfg.deployment.activation.specialisation == null || !cfg.deployment.activation.keep-specialisation;
        message = "${showOption [ "lollypops" "deployment" "activation" "keep-specialisation" ]} cannot be set with ${showOption [ "lollypops" "deployment" "activation" "specialisation" ]}: name the specialisation to activate, or keep the one the host runs, not both.";
      }
      (
        let
          spec = cfg.deployment.activation.specialisation;
        in
        {
          assertion = spec == null || !(config ? specialisation) || config.specialisation ? ${spec};
          message = "${showOption [ "lollypops" "deployment" "activation" "specialisation" ]}: the system has no specialisation \"${toString spec}\" (specialisation.<name>).";
        }
      )
    ]
    ++ lib.optionals (cfg.deployment.build-host != null) [
      {
        assertion = cfg.deployment.build-host.host-key-policy == "pinned" -> cfg.deployment.build-host.host-key != null;
        message = "${showOption [ "lollypops" "deployment" "build-host" "host-key-policy" ]}: \"pinned\" needs the build host's public key in lollypops.deployment.build-host.host-key.";
      }
      {
        assertion = cfg.deployment.build-host.host-key != null -> cfg.deployment.build-host.host-key-policy == "pinned";
        message = "${showOption [ "lollypops" "deployment" "build-host" "host-key" ]}: is set, but host-key-policy is \"${cfg.deployment.build-host.host-key-policy}\"; use \"pinned\" or remove the key.";
      }
    ]
    ++ lib.mapAttrsToList (name: c: {
      assertion = (c.cmd == null) != (c.url == null);
      message = "${showOption [ "lollypops" "deployment" "health-checks" name ]}: set exactly one of cmd (run on the host) and url (fetched from the deployer).";
    }) cfg.deployment.health-checks;
in
{
  _class = "nixos";
  # One identity whichever path or flake the module is imported through, so
  # importing it twice is harmless.
  key = "lollypops/nixos-module";

  imports = [
    ./secret-units.nix
    (reach.module {
      host = {
        default = config.networking.hostName;
        defaultText = literalExpression "config.networking.hostName";
      };
      user.default = "root";
    })
  ];

  options.lollypops = {
    deployment = {
      config-dir = mkOption {
        type = types'.directory;
        default = "/var/src/lollypops";
        description = ''
          Directory on the host where lollypops places the configuration flake
          it deploys.
        '';
      };

      deploy-method = mkOption {
        type = types.enum [
          "copy"
          "archive"
        ];
        default = "copy";
        example = "archive";
        description = ''
          How the flake reaches the host:

          - `copy` copies the flake's own source (`nix copy`); the host fetches
            the flake's inputs when it evaluates it, from caches or their
            origins, so it must be able to reach them.
          - `archive` copies the flake and all its inputs (`nix flake
            archive`): nothing needs fetching on the host, which helps with
            private inputs or no internet access, at the cost of uploading
            everything from the deployer.
        '';
      };

      local-evaluation = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether to evaluate and build the system on the deployer, copy its
          closure to the host over the run's connection and activate it there,
          instead of evaluating and building on the host.
        '';
      };

      build-host = mkOption {
        type = types.nullOr (
          types.submodule (
            { config, ... }:
            {
              options = {
                host = mkOption {
                  type = types'.sshHost;
                  example = "builder.example.org";
                  description = "Address of the build host: a name, an ssh_config alias or an IP address.";
                };
                user = mkOption {
                  type = types.nullOr types'.userName;
                  default = null;
                  example = "builder";
                  description = ''
                    User to log in as on the build host; it must be allowed to
                    add unsigned paths to its Nix store (root, or a trusted user
                    of its nix-daemon). `null` leaves the choice to ssh.
                  '';
                };
                opts = mkOption {
                  type = types.listOf types'.textLine;
                  default = [ ];
                  example = [
                    "-p"
                    "2222"
                  ];
                  description = ''
                    Extra arguments for ssh to the build host, one per element,
                    never interpreted by a shell. The ssh program is the host's
                    `ssh.command`.
                  '';
                };
                host-key = mkOption {
                  type = types.nullOr types'.hostKey;
                  default = null;
                  description = "The build host's public key, as `ssh.host-key`.";
                };
                host-key-policy = mkOption {
                  type = types.enum [
                    "strict"
                    "accept-new"
                    "pinned"
                  ];
                  default = if config.host-key != null then "pinned" else "strict";
                  defaultText = literalExpression ''if host-key != null then "pinned" else "strict"'';
                  description = "How the build host's key is checked, as `ssh.host-key-policy`.";
                };
              };
            }
          )
        );
        default = null;
        example = literalExpression ''{ host = "builder.example.org"; user = "builder"; }'';
        description = ''
          A machine that builds the host's system, as `nixos-rebuild
          --build-host` does: the system's derivation is evaluated on the
          deployer (whatever `local-evaluation` says), its `.drv` closure
          copied to the build host and built there, and the result copied
          from the build host to the host (through the deployer, with
          `--substitute-on-destination`), then activated as always. Hosts
          with the same build host share one ssh connection to it per run.
          The flag `--build-host [user@]host[:port]` sets it for one run.
        '';
      };

      # The original lollypops' one group per host, a tag here.
      group = mkOption {
        type = types.nullOr types'.tag;
        default = null;
        visible = false;
        description = ''
          The host's group in the original lollypops; added to `tags`, with a
          warning.
        '';
      };

    };

    deployment.rollback = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Whether a `switch` or `test` returns the host to its previous system
          by itself when the activation fails, a health check fails, or the
          deployer cannot reach the host again within `confirm-timeout`
          seconds. The activation runs detached from the SSH session
          (`systemd-run`) and waits for the deployer's confirmation; see
          docs/activation.md. When false, the host's `nixos-rebuild` activates
          as in the original lollypops.
        '';
      };
      confirm-timeout = mkOption {
        type = types.ints.between 5 3600;
        default = 30;
        description = ''
          Seconds the deployer has, after the activation ended, to reach the
          host again and confirm; the host waits this long plus the longest
          its health checks can take (every attempt of every check timing
          out), counted on its monotonic clock, and rolls back without the
          confirmation.
        '';
      };
    };

    deployment.health-checks = mkOption {
      type = types.attrsOf (
        types.submodule {
          options = {
            cmd = mkOption {
              type = types.nullOr types.str;
              default = null;
              example = "systemctl is-active nginx";
              description = "A shell command run on the host (through sudo when enabled); exit 0 passes.";
            };
            url = mkOption {
              type = types.nullOr types'.textLine;
              default = null;
              example = "https://host1.example.org/health";
              description = "An http(s) URL fetched from the deployer; the answer must have `status`.";
            };
            status = mkOption {
              type = types.ints.between 100 599;
              default = 200;
              description = "The HTTP status `url` must answer.";
            };
            timeout = mkOption {
              type = types.ints.between 1 3600;
              default = 10;
              description = "Seconds one attempt may take.";
            };
            retries = mkOption {
              type = types.ints.between 0 1000;
              default = 3;
              description = "Attempts after a failed first one.";
            };
            interval = mkOption {
              type = types.ints.between 0 3600;
              default = 2;
              description = "Seconds between attempts.";
            };
          };
        }
      );
      default = { };
      example = {
        nginx.cmd = "systemctl is-active nginx";
        web.url = "https://host1.example.org/health";
      };
      description = ''
        Checks run after the activation, in name order: a failed one (after its
        retries) fails the host and, with `rollback.enable`, rolls it back.
      '';
    };

    deployment.reboot = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether to reboot the host after `REBUILD_ACTION=boot`, or after a
          switch that changed the kernel or initrd, and wait for it to come back
          with the new system before the health checks.
        '';
      };
      timeout = mkOption {
        type = types.ints.between 10 86400;
        default = 300;
        description = "Seconds to wait for the host to come back after a reboot.";
      };
    };

    deployment.activation = {
      install-bootloader = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether `switch` and `boot` install the boot loader rather than
          only update it (`NIXOS_INSTALL_BOOTLOADER=1`, as `nixos-rebuild
          --install-bootloader`): needed once when a host moves to another
          boot loader. The flag `--install-bootloader` does it for one run.
        '';
      };
      specialisation = mkOption {
        type = types.nullOr types'.specialisation;
        default = null;
        example = "web";
        description = ''
          The specialisation a `switch` or `test` activates (`nixos-rebuild
          --specialisation`); the profile and the boot loader get the system
          itself. The flag `--specialisation NAME` does it for one run.
        '';
      };
      keep-specialisation = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether a `switch` or `test` activates the specialisation the host
          runs, when the new system has one of that name, instead of the
          system itself (what `nixos-rebuild` activates).
        '';
      };
      profile-name = mkOption {
        type = types.nullOr types'.specialisation;
        default = null;
        example = "fleet";
        description = ''
          The profile the system is installed into:
          `/nix/var/nix/profiles/system-profiles/<name>` instead of the
          system profile (`nixos-rebuild --profile-name`).
        '';
      };
    };

    secrets =
      secrets.mkOptions {
        cfg = cfg.secrets;
        defaultDir.default = "/run/keys";
        owner.default = "root";
        group.default = "root";
        units = true;
        inherit volatile;
      }
      // {
        remove-stale = secrets.removeStaleOption;
      };

    tasks = tasks.tasksOption;
    extraTasks = tasks.extraTasksOption;

    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      visible = false;
      readOnly = true;
      default =
        deploymentAssertions
        ++ secrets.assertions [ "lollypops" "secrets" ] cfg.secrets
        ++ tasks.assertions cfg;
      description = ''
        The lollypops part of `assertions`, which `nix run` checks without
        evaluating the rest of the system.
      '';
    };

    inventory-entry = mkOption {
      type = types.unspecified;
      internal = true;
      visible = false;
      readOnly = true;
      default = import ./entry.nix { inherit lib; } config;
      defaultText = literalExpression "import ./entry.nix { inherit lib; } config";
      description = ''
        The host's entry in the runner's inventory, given
        `{ name, flake }`: what the runner evaluates of the host (in a pure
        `nix eval` that cannot import lollypops' files), with the
        assertions checked and the warnings printed.
      '';
    };

    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      visible = false;
      readOnly = true;
      default = compatWarnings ++ secrets.warnings cfg.secrets ++ tasks.warnings cfg;
      description = ''
        The lollypops part of `warnings` (mostly spellings of the original
        lollypops), which `nix run` prints too.
      '';
    };
  };

  config = {
    assertions = cfg.assertions;
    warnings = cfg.warnings;
    lollypops.deployment.tags = lib.optional (cfg.deployment.group != null) cfg.deployment.group;
  };
}
