# Evaluation tests of lollypops' modules and inventory projection: the real
# module system (nixpkgs' lib, from a nix-community/nixpkgs.lib checkout)
# with stand-ins for the NixOS and home-manager options around them.
#
#   nix-instantiate --eval --strict --json tests/nix/eval.nix --argstr nixpkgsLib "$LOLLYPOPS_NIXPKGS_LIB"
#
# The result holds the projected inventories (golden files in
# go/internal/config/testdata/nix-*.json), the declared options (for the
# contract test in go/internal/config/nix_test.go) and named checks.
{ nixpkgsLib }:
let
  lib = import (nixpkgsLib + "/lib");

  # This repository's flake, with nixpkgs reduced to its lib: enough for the
  # modules, not for packages or apps.
  lollypops = (import ../../flake.nix).outputs {
    self = lollypops;
    nixpkgs = { inherit lib; };
    nixpkgs-go = { };
  };

  # The flake again, with a nixpkgs whose packages only record how they are
  # called: enough to evaluate the apps' wiring (nothing here can be built).
  # `origin` names the nixpkgs, `goVersion` its Go.
  stubPkgsWith =
    { origin, goVersion }:
    rec {
      inherit origin;
      go.version = goVersion;
      fake =
        name: attrs:
        attrs
        // {
          type = "derivation";
          outPath = "/nix/store/00000000000000000000000000000000-${name}";
        };
      openssh = fake "openssh" { };
      nix = fake "nix" { };
      pass = fake "pass" { };
      nixos-rebuild-ng = fake "nixos-rebuild" { };
      writeText = name: text: fake name { inherit text; };
      runCommand = name: env: text: fake name { inherit env text; };
      nixfmt-tree = fake "nixfmt-tree" { };
      writeShellScriptBin = name: text: fake name {
        inherit text;
        meta.mainProgram = name;
      };
      buildGoModule = args: fake "${args.pname}-${args.version}" { inherit args origin; };
      # As nixpkgs' callPackage: the result has `.override`.
      callPackage =
        file: args:
        let
          f = import file;
        in
        lib.makeOverridable f (
          builtins.intersectAttrs (builtins.functionArgs f) { inherit lib buildGoModule; } // args
        );
    };
  stubPkgs = stubPkgsWith {
    origin = "nixpkgs";
    goVersion = "1.26.8";
  };
  flakeWith =
    { nixpkgs, nixpkgs-go }:
    let
      nixpkgsOf = pkgs: {
        inherit lib;
        legacyPackages = lib.genAttrs [
          "x86_64-linux"
          "aarch64-linux"
          "x86_64-darwin"
          "aarch64-darwin"
        ] (_: pkgs);
      };
      flake = (import ../../flake.nix).outputs {
        self = flake;
        nixpkgs = nixpkgsOf nixpkgs;
        nixpkgs-go = nixpkgsOf nixpkgs-go;
      };
    in
    flake;
  lollypopsWithPkgs = flakeWith {
    nixpkgs = stubPkgs;
    nixpkgs-go = stubPkgsWith {
      origin = "nixpkgs-go";
      goVersion = "1.26.8";
    };
  };

  # A stand-in for nixpkgs.lib.nixosSystem.
  nixosSystem =
    {
      modules,
      system ? null,
    }:
    lib.evalModules {
      class = "nixos";
      modules = modules ++ [
        ./stubs/nixos.nix
        ./stubs/nixos-units.nix
      ];
    };

  # A stand-in for home-manager's homeManagerConfiguration: the module
  # system with the home-manager options lollypops reads, and an activation
  # package (a derivation that is never built: the projection takes its
  # drvPath).
  homeManagerConfiguration =
    { modules }:
    let
      ev = lib.evalModules {
        class = "homeManager";
        modules = modules ++ [ ./stubs/home-manager.nix ];
      };
    in
    {
      inherit (ev) config options;
      activationPackage = derivation {
        name = "home-manager-generation";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [
          "-c"
          "echo ${ev.config.home.username} >$out"
        ];
      };
    };

  # Flakes have a store path; these are never built.
  asFlake = f: f // { outPath = "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source"; };
  project = import ../../nix/inventory.nix { inherit lib; };

  seed = asFlake (import ./fixtures/seed-example.nix { inherit lollypops nixosSystem; });
  full = asFlake (
    import ./fixtures/full.nix { inherit lollypops nixosSystem homeManagerConfiguration; }
  );
  # The VM test's fleet (tests/vm/fleet/hosts.nix), as far as it evaluates
  # without nixpkgs: its lollypops settings, projected.
  vmFleet = asFlake {
    nixosConfigurations = import ../vm/fleet/hosts.nix {
      nixpkgs = {
        # Strings: interpolating a path would copy it into the store.
        outPath = toString ./stubs/vm-fleet/nixpkgs;
        lib = lib // {
          inherit nixosSystem;
        };
      };
      inherit lollypops;
      home-manager = toString ./stubs/vm-fleet/home-manager;
      extra = toString ./stubs;
      network = lib.genAttrs [ "alpha" "beta" "gamma" ] (name: {
        networking.hostName = lib.mkDefault name;
      });
      marker = "FIRST";
    };
  };

  # Written for the original lollypops (its app and package need pkgs).
  original = asFlake (
    import ./fixtures/original.nix {
      lollypops = lollypopsWithPkgs;
      inherit nixosSystem;
      self = original;
    }
  );

  inventories = {
    minimal = project seed;
    full = project full;
    vm-fleet = project vmFleet;
    original = project original;
  };

  # A host with the module and `settings`.
  hostWith =
    settings:
    nixosSystem {
      modules = [
        ./stubs/home-manager-nixos.nix
        lollypops.nixosModules.lollypops
        { networking.hostName = "h"; }
        settings
      ];
    };
  fixtureHost = hostWith { };

  failedMessages = assertions: map (a: a.message) (builtins.filter (a: !a.assertion) assertions);

  # An assertion whose message starts with `prefix` fires for `settings`
  # (none fires for the defaults: the first check).
  firesWith =
    name: prefix: settings:
    let
      messages = failedMessages (hostWith settings).config.lollypops.assertions;
    in
    {
      name = "assertion: ${name}";
      ok = builtins.any (lib.hasPrefix prefix) messages;
      detail = "want a message starting with ${builtins.toJSON prefix}, got ${builtins.toJSON messages}";
    };

  # Evaluating `get (hostWith settings)` fails (a type or definition error).
  rejects =
    name: settings: get:
    let
      r = builtins.tryEval (builtins.deepSeq (get (hostWith settings)) true);
    in
    {
      name = "rejects: ${name}";
      ok = !r.success;
      detail = "the definition was accepted";
    };

  secretOf = name: h: h.config.lollypops.secrets.files.${name};
  file = attrs: { lollypops.secrets.files.x = attrs; };

  check = name: ok: detail: { inherit name ok detail; };

  aliceSecrets =
    files:
    (hostWith {
      users.users.alice.group = "staff";
      home-manager.users.alice = {
        imports = [ lollypops.homeModules.default ];
        lollypops.secrets.files = files;
      };
    }).config.home-manager.users.alice.lollypops;

  allFullSecrets = lib.concatMap (h: h.secrets.files) (builtins.attrValues inventories.full.hosts);

  checks = [
    (check "no assertion fires for the defaults" (
      failedMessages fixtureHost.config.lollypops.assertions == [ ]
    ) (builtins.toJSON (failedMessages fixtureHost.config.lollypops.assertions)))

    (firesWith "pinned without a key" "lollypops.deployment.ssh.host-key-policy: " {
      lollypops.deployment.ssh.host-key-policy = "pinned";
    })
    (firesWith "a key without pinned" "lollypops.deployment.ssh.host-key: " {
      lollypops.deployment.ssh = {
        host-key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        host-key-policy = "strict";
      };
    })
    (firesWith "a build host pinned without a key" "lollypops.deployment.build-host.host-key-policy: " {
      lollypops.deployment.build-host = {
        host = "builder";
        host-key-policy = "pinned";
      };
    })
    (firesWith "a build host key without pinned" "lollypops.deployment.build-host.host-key: " {
      lollypops.deployment.build-host = {
        host = "builder";
        host-key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        host-key-policy = "strict";
      };
    })
    (check "a build host key alone pins it" (
      (hostWith {
        lollypops.deployment.build-host = {
          host = "builder";
          host-key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        };
      }).config.lollypops.deployment.build-host.host-key-policy == "pinned"
    ) "")
    (firesWith "a health check with cmd and url" "lollypops.deployment.health-checks.web: " {
      lollypops.deployment.health-checks.web = {
        cmd = "true";
        url = "http://host1/";
      };
    })
    (firesWith "a health check with neither" "lollypops.deployment.health-checks.web: " {
      lollypops.deployment.health-checks.web.timeout = 5;
    })
    (firesWith "a specialisation and keep-specialisation" "lollypops.deployment.activation.keep-specialisation cannot be set with" {
      lollypops.deployment.activation = {
        specialisation = "web";
        keep-specialisation = true;
      };
    })
    (firesWith "an unknown task" "lollypops.tasks: unknown task \"deploy\"" {
      lollypops.tasks = [ "deploy" ];
    })
    (firesWith "a task listed twice" "lollypops.tasks: \"rebuild\" is listed twice" {
      lollypops.tasks = [
        "rebuild"
        "rebuild"
      ];
    })
    (firesWith "an extra task name with ':'" "lollypops.extraTasks.\"a:b\": " {
      lollypops.extraTasks."a:b".cmds = [ "true" ];
    })
    (firesWith "a dep cycle" "lollypops.extraTasks: the deps form a cycle" {
      lollypops.extraTasks = {
        example.deps = [ "rebuild" ];
        rebuild.deps = [ "example" ];
      };
    })
    (firesWith "a task that depends on itself" "lollypops.extraTasks.a.deps: " {
      lollypops.extraTasks.a.deps = [ "a" ];
    })
    (firesWith "two secrets, one file" "lollypops.secrets.files.b.path: " {
      lollypops.secrets.files = {
        a.path = "/run/keys/same";
        b.path = "/run/keys/same";
      };
    })
    (
      let
        messages = failedMessages
          (aliceSecrets {
            a.path = "/home/alice/same";
            b.path = "/home/alice/same";
          }).assertions;
      in
      check "assertion: two home-manager secrets, one file" (builtins.any (lib.hasPrefix "lollypops.secrets.files.b.path: ") messages) (builtins.toJSON messages)
    )
    (
      let
        r = builtins.tryEval (
          builtins.deepSeq (project (asFlake {
            nixosConfigurations.h = hostWith { lollypops.tasks = [ "deploy" ]; };
          })).hosts true
        );
      in
      check "the projection refuses a host whose assertions fail" (!r.success) "it projected the host"
    )

    (rejects "a relative secret path" (file { path = "run/keys/x"; }) (secretOf "x"))
    (rejects "a Nix path value as secret path" (file { path = ./eval.nix; }) (secretOf "x"))
    (rejects "a secret path in the store" (file { path = "/nix/store/abc-x"; }) (secretOf "x"))
    (rejects "an unclean secret path" (file { path = "/run/keys/../x"; }) (secretOf "x"))
    (rejects "a trailing slash" (file { path = "/run/keys/x/"; }) (secretOf "x"))
    (rejects "a symbolic mode" (file { mode = "u=r"; }) (secretOf "x"))
    (rejects "a bad octal mode" (file { mode = "0999"; }) (secretOf "x"))
    (rejects "an owner that is a command" (file { owner = "root; rm -rf /"; }) (secretOf "x"))
    (rejects "a group that is an option" (file { group = "-g"; }) (secretOf "x"))
    (rejects "a blank command" (file { cmd = " "; }) (secretOf "x"))
    (rejects "both group and groups, differing" (file {
      group = "a";
      groups = "b";
    }) (secretOf "x"))
    (rejects "a unit name that is an option" (file { restartUnits = [ "--force" ]; }) (secretOf "x"))
    (rejects "a unit name without its type" (file { reloadUnits = [ "nginx" ]; }) (secretOf "x"))
    (rejects "a template unit without instance" (file { restartUnits = [ "getty@.service" ]; }) (
      secretOf "x"
    ))
    (check "unit names as systemd spells them" (
      (secretOf "x" (hostWith (file {
        restartUnits = [
          "getty@tty1.service"
          "sys-subsystem-net-devices-eth0.device"
        ];
        reloadUnits = [ "a\\x2db.service" ];
      }))).restartUnits == [
        "getty@tty1.service"
        "sys-subsystem-net-devices-eth0.device"
      ]
    ) "")
    (rejects "a specialisation that is a path" { lollypops.deployment.activation.specialisation = "../x"; } (
      h: h.config.lollypops.deployment.activation.specialisation
    ))
    (rejects "a profile name with a slash" { lollypops.deployment.activation.profile-name = "a/b"; } (
      h: h.config.lollypops.deployment.activation.profile-name
    ))
    (rejects "a relative config-dir" { lollypops.deployment.config-dir = "var/src"; } (
      h: h.config.lollypops.deployment.config-dir
    ))
    (rejects "deploy-method rsync" { lollypops.deployment.deploy-method = "rsync"; } (
      h: h.config.lollypops.deployment.deploy-method
    ))
    (rejects "an ssh host that is an option" { lollypops.deployment.ssh.host = "-oProxyCommand=id"; } (
      h: h.config.lollypops.deployment.ssh.host
    ))
    (rejects "an empty host name" { networking.hostName = ""; } (h: h.config.lollypops.deployment.ssh.host))
    (rejects "a user that is a command" { lollypops.deployment.ssh.user = "$(id)"; } (
      h: h.config.lollypops.deployment.ssh.user
    ))
    (rejects "an ssh command with arguments" { lollypops.deployment.ssh.command = "ssh -v"; } (
      h: h.config.lollypops.deployment.ssh.command
    ))
    (rejects "an ssh option with a newline" { lollypops.deployment.ssh.opts = [ "-o" "A=b\nc" ]; } (
      h: h.config.lollypops.deployment.ssh.opts
    ))
    (rejects "a host key that is not one" { lollypops.deployment.ssh.host-key = "AAAA"; } (
      h: h.config.lollypops.deployment.ssh.host-key
    ))
    (rejects "a task directory with a template" { lollypops.extraTasks.t.dir = "{{.HOME}}"; } (
      h: h.config.lollypops.extraTasks.t.dir
    ))

    (
      let
        h = hostWith (
          { config, ... }:
          {
            fileSystems."/srv/scratch".fsType = "tmpfs";
            fileSystems."/run/media/disk".fsType = "ext4";
            lollypops.secrets.files = {
              x = { };
              persistent.path = "/var/lib/x";
              scratch.path = "/srv/scratch/y";
              disk.path = "/run/media/disk/z";
              off.unit = false;
              "nixos-secrets/host1/backup-key" = { };
            };
            systemd.services.app = {
              wantedBy = [ "multi-user.target" ];
              after = [ config.lollypops.secrets.files."nixos-secrets/host1/backup-key".unitName ];
              wants = [ config.lollypops.secrets.files."nixos-secrets/host1/backup-key".unitName ];
            };
          }
        );
        units = lib.mapAttrs (_: f: f.unit) h.config.lollypops.secrets.files;
      in
      check "a secret's unit: on under /run and a tmpfs mount, off elsewhere and when unset" (
        units == {
          x = true;
          persistent = false;
          scratch = true;
          disk = false;
          off = false;
          "nixos-secrets/host1/backup-key" = true;
        }
        && builtins.attrNames h.config.systemd.paths == [
          "lollypops-secret-nixos\\x2dsecrets-host1-backup\\x2dkey"
          "lollypops-secret-scratch"
          "lollypops-secret-x"
        ]
        && h.config.systemd.services.app.after == [ "lollypops-secret-nixos\\x2dsecrets-host1-backup\\x2dkey.service" ]
      ) (builtins.toJSON {
        inherit units;
        paths = builtins.attrNames h.config.systemd.paths;
        inherit (h.config.systemd.services.app) after;
      })
    )
    (
      let
        nameOf = n: (secretOf n (hostWith { lollypops.secrets.files.${n} = { }; })).unitName;
        names = map nameOf [
          "db-pass"
          "db/pass"
          "db\\x2dpass"
          ".hidden key"
          "a.b:c_d"
          "100%"
        ];
      in
      check "unit names: escaped as systemd-escape does, no two alike" (
        names == [
          "lollypops-secret-db\\x2dpass.service"
          "lollypops-secret-db-pass.service"
          "lollypops-secret-db\\x5cx2dpass.service"
          "lollypops-secret-\\x2ehidden\\x20key.service"
          "lollypops-secret-a.b:c_d.service"
          "lollypops-secret-100\\x25.service"
        ]
      ) (builtins.toJSON names)
    )
    (
      let
        h = hostWith {
          lollypops.secrets.files."db pass%" = {
            path = "/run/keys/db pass%";
          };
        };
        svc = h.config.systemd.services."lollypops-secret-db\\x20pass\\x25";
        path = h.config.systemd.paths."lollypops-secret-db\\x20pass\\x25";
        script = "${../../go/internal/secrets/wait.sh}";
      in
      check "the unit: waits for the file in ExecStartPre, for its absence in ExecStart; its path unit starts it" (
        svc.preStart == "exec /bin/sh ${script} present '/run/keys/db pass%'"
        && svc.script == "exec /bin/sh ${script} absent '/run/keys/db pass%'"
        && svc.serviceConfig.TimeoutStartSec == "infinity"
        && svc.serviceConfig.Type == "simple"
        && svc.serviceConfig.Restart == "on-failure"
        && !(svc ? wantedBy)
        && path.wantedBy == [ "multi-user.target" ]
        && path.pathConfig.PathExists == "/run/keys/db pass%%"
      ) (builtins.toJSON { inherit svc path; })
    )
    (
      let
        h = hostWith { lollypops.secrets.files."clé" = { }; };
      in
      check "a name outside printable ASCII has no unit by default" (
        !(secretOf "clé" h).unit && h.config.systemd.services == { }
      ) ""
    )
    (firesWith "a unit for a name outside printable ASCII" "lollypops.secrets.files.\"clé\".unit: " {
      lollypops.secrets.files."clé".unit = true;
    })
    (rejects "setting a unit's name" (file { unitName = "x.service"; }) (secretOf "x"))
    (
      let
        gamma = vmFleet.nixosConfigurations.gamma.config.systemd;
      in
      check "the VM test's fleet: gamma's waiter is after its secret's unit, which gamma has" (
        gamma.services.waiter.after == [ "lollypops-secret-gamma\\x2dsecret.service" ]
        && gamma.services.waiter.wants == gamma.services.waiter.after
        && gamma.paths ? "lollypops-secret-gamma\\x2dsecret"
        && gamma.services ? "lollypops-secret-gamma\\x2dsecret"
      ) (builtins.toJSON gamma.services.waiter)
    )
    (
      let
        late =
          wantedBy:
          (hostWith (
            { config, ... }:
            {
              lollypops.secrets.files.late.upload-at = "post-activation";
              systemd.services.app = {
                inherit wantedBy;
                after = [ config.lollypops.secrets.files.late.unitName ];
              };
            }
          )).config.warnings;
        started = late [ "multi-user.target" ];
      in
      check "a warning for a service the activation starts after a post-activation secret's unit" (
        builtins.any (lib.hasPrefix "lollypops.secrets.files.late.upload-at: \"post-activation\", but its unit lollypops-secret-late.service is in the `after` of app.service, which the activation starts: ") started
        && late [ "lollypops-secret-late.service" ] == [ ]
        && fixtureHost.config.warnings == [ ]
      ) (builtins.toJSON [ started (late [ "lollypops-secret-late.service" ]) fixtureHost.config.warnings ])
    )
    (check "no secret, no unit" (fixtureHost.config.systemd.services == { } && fixtureHost.config.systemd.paths == { }) "")
    (check "the `groups` spelling sets the group" (
      (secretOf "secret1" full.nixosConfigurations.ahorn).group == "mygroup"
    ) "")
    (check "importing the module twice is harmless" (
      (builtins.tryEval (
        (nixosSystem {
          modules = [
            lollypops.nixosModules.lollypops
            lollypops.nixosModules.default
            (import ../../nix/module.nix)
          ];
        }).config.lollypops.deployment.config-dir
      )).success
    ) "")
    (check "a host without the module is left out" (!(inventories.full.hosts ? nomodule)) "")
    (check "a home-manager user without the module has no secrets" (
      !builtins.any (s: s.home-manager-user == "nomod") allFullSecrets
    ) "")
    (
      let
        s = (aliceSecrets { k = { }; }).secrets.files.k;
      in
      check "home-manager defaults: the user, the user's group, ~/lollypops-secrets" (
        s.owner == "alice" && s.group == "staff" && s.path == "/home/alice/lollypops-secrets/k"
      ) (builtins.toJSON { inherit (s) owner group path; })
    )
    (
      let
        bare = lollypopsWithPkgs.apps.x86_64-linux.default;
        app = bare { configFlake = full; };
        runner = lollypopsWithPkgs.packages.x86_64-linux.default;
      in
      check "the app is valid alone and applied to { configFlake }; the runner's build (without cgo)" (
        bare.type == "app"
        && lib.hasSuffix "/bin/lollypops" bare.program
        && app.type == "app"
        && lib.hasSuffix "/bin/lollypops" app.program
        && runner.args.subPackages == [
          "cmd/lollypops"
          "cmd/lollypops-step"
        ]
        && builtins.elem "-X github.com/lollypops/lollypops/go/internal/version.Version=${runner.args.version}" runner.args.ldflags
        && runner.args.env.CGO_ENABLED == 0
      ) (builtins.toJSON { inherit (app) program; })
    )
    (
      let
        apps = import ../../nix/apps.nix {
          inherit lib;
          pkgs = stubPkgs;
          runner = stubPkgs.fake "runner" { };
        };
        scriptOf = f: (apps.wrapperFor (asFlake f)).text;
        full' = scriptOf full;
        seed' = scriptOf seed;
        has = lib.hasInfix;
      in
      check "the wrapper: the runner pointed at the flake, \"$@\" verbatim, deployer tools after PATH" (
        has ''exec /nix/store/00000000000000000000000000000000-runner/bin/lollypops "$@"'' full'
        && has "export LOLLYPOPS_FLAKE=path:/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source\n" full'
        && has "export LOLLYPOPS_FLAKE_HOSTS=/nix/store/00000000000000000000000000000000-lollypops-hosts.json" full'
        && has "PATH=\${PATH:+$PATH:}/nix/store/00000000000000000000000000000000-openssh/bin:" full'
        && has "-pass/bin" seed'
        && !has "-nixos-rebuild/bin" full'
      ) full'
    )
    (
      let
        apps = import ../../nix/apps.nix {
          inherit lib;
          pkgs = stubPkgs;
          runner = stubPkgs.fake "runner" { };
        };
        root = "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source";
        flake = {
          outPath = root;
          narHash = "sha256-AbC+/x=";
          sourceInfo.outPath = root;
        };
        sub = flake // {
          outPath = "${root}/deploy/fleet";
        };
        refs = {
          root = apps.flakeRef flake;
          sub = apps.flakeRef sub;
          plain = apps.flakeRef { outPath = root; };
        };
      in
      check "the app locks the flake by its narHash, and a ?dir= flake by its source and dir" (
        refs == {
          root = "path:${root}?narHash=sha256-AbC%2B%2Fx%3D";
          sub = "path:${root}?dir=deploy%2Ffleet&narHash=sha256-AbC%2B%2Fx%3D";
          plain = "path:${root}";
        }
      ) (builtins.toJSON refs)
    )
    (check "a home-manager configuration without the module is left out" (
      !(inventories.full.homes ? nomodule) && inventories.full.homes ? bob
    ) "")
    (
      let
        bob = inventories.full.homes.bob;
      in
      check "a home deployed on its own: the user logs in, no sudo, deploy-secrets then rebuild" (
        bob.deployment.ssh.user == "bob"
        && !bob.deployment.sudo.enable
        && bob.tasks == [
          "deploy-secrets"
          "rebuild"
        ]
        && bob.home-directory == "/home/bob"
        && lib.hasSuffix "-home-manager-generation.drv" bob.activation-package
      ) (builtins.toJSON bob)
    )
    (
      let
        homeWith =
          settings:
          homeManagerConfiguration {
            modules = [
              lollypops.homeModules.default
              {
                home.username = "alice";
                home.homeDirectory = "/home/alice";
                lollypops.deployment.ssh.host = "h";
              }
              settings
            ];
          };
        refused =
          settings:
          !(builtins.tryEval (
            builtins.deepSeq (import ../../nix/project-home.nix {
              name = "alice";
              home = homeWith settings;
            }) true
          )).success;
        messages = settings: failedMessages (homeWith settings).config.lollypops.assertions;
      in
      check "a home's tasks: no deploy-flake, no unknown deps; its projection refuses failed assertions" (
        refused { lollypops.tasks = [ "deploy-flake" ]; }
        && builtins.any (lib.hasPrefix "lollypops.tasks: unknown task \"deploy-flake\"") (messages {
          lollypops.tasks = [ "deploy-flake" ];
        })
        && builtins.any (lib.hasPrefix "lollypops.extraTasks.x.deps: unknown tasks \"diff\"") (messages {
          lollypops.extraTasks.x.deps = [ "diff" ];
        })
        && messages { } == [ ]
        && !refused { }
        # A user's secrets restart no units and have none: the options do
        # not exist.
        && refused { lollypops.secrets.files.x.restartUnits = [ "a.service" ]; }
        && refused { lollypops.secrets.files.x.unit = true; }
      ) (builtins.toJSON (messages { lollypops.extraTasks.x.deps = [ "diff" ]; }))
    )
    (check "the flake exports the modules under their names" (
      lollypops.nixosModules.default == lollypops.nixosModules.lollypops
      && lollypops.homeModules.default == lollypops.homeModules.lollypops
      && lollypops.hmModule == lollypops.homeModules.default
    ) "")
  ]
  ++ import ./compat.nix {
    inherit
      lib
      check
      firesWith
      hostWith
      failedMessages
      original
      flakeWith
      stubPkgsWith
      asFlake
      ;
    inventory = inventories.original;
  };
in
{
  inherit inventories checks;

  # Every option under `lollypops`, for the contract test; `_module.*` are
  # the module system's own, in each submodule.
  options =
    let
      declared =
        opts:
        map (o: { inherit (o) loc internal visible; }) (
          builtins.filter (o: !builtins.elem "_module" o.loc) (lib.optionAttrSetToDocList opts.lollypops)
        );
    in
    {
      nixos = declared fixtureHost.options;
      home-manager = declared
        (lib.evalModules {
          class = "homeManager";
          modules = [
            lollypops.homeModules.default
            ./stubs/home-manager.nix
          ];
        }).options;
    };
}
