# Checks (part of tests/nix/eval.nix) that configurations written for the
# original lollypops keep working (tests/nix/fixtures/original.nix, shaped
# like public ones), with a warning where the new spelling is better, and
# of the flake's own outputs: the Go that builds the runner, and their
# shape as `nix flake check` of recent Nix judges it.
{
  lib,
  check,
  firesWith,
  hostWith,
  failedMessages,
  original,
  inventory,
  flakeWith,
  stubPkgsWith,
  asFlake,
}:
let
  inherit (lib) hasInfix hasPrefix;
  hosts = original.nixosConfigurations;
  kartoffel = hosts.kartoffel.config;
  birne = hosts.birne.config;
  pinpox = kartoffel.home-manager.users.pinpox.lollypops;
  inv = inventory.hosts;
  secret = host: name: builtins.head (builtins.filter (s: s.name == name) inv.${host}.secrets.files);

  # A warning of `warnings` starts with `prefix` (and holds `infix`).
  warns =
    name: warnings: prefix: infix:
    check "original: ${name}" (builtins.any (w: hasPrefix prefix w && hasInfix infix w) warnings) (
      builtins.toJSON warnings
    );

  optsOf = settings: (hostWith settings).config.lollypops.deployment;
  warningsOf = settings: (hostWith settings).config.lollypops.warnings;

  # Evaluating `get (hostWith settings)` fails.
  rejects =
    name: settings: get:
    check "rejects: ${name}" (
      !(builtins.tryEval (builtins.deepSeq (get (hostWith settings)) true)).success
    ) "the definition was accepted";

  # The flake with stub nixpkgs whose Go is `nixpkgs` and `nixpkgs-go`.
  runnerWithGo =
    nixpkgs: nixpkgs-go:
    (flakeWith {
      nixpkgs = stubPkgsWith {
        origin = "nixpkgs";
        goVersion = nixpkgs;
      };
      nixpkgs-go =
        if nixpkgs-go == null then
          throw "nixpkgs-go was evaluated"
        else
          stubPkgsWith {
            origin = "nixpkgs-go";
            goVersion = nixpkgs-go;
          };
    }).packages.x86_64-linux.default;

  # What `nix flake check` (Nix 2.25 and later) says of the outputs of a
  # flake, for `system`: errors, and the unknown outputs it warns about.
  flakeCheck =
    system: outputs:
    let
      known = [
        "apps"
        "bundlers"
        "checks"
        "defaultApp"
        "defaultBundler"
        "defaultPackage"
        "defaultTemplate"
        "devShell"
        "devShells"
        "formatter"
        "hydraJobs"
        "legacyPackages"
        "nixosConfigurations"
        "nixosModule"
        "nixosModules"
        "overlay"
        "overlays"
        "packages"
        "templates"
      ];
      isDrv = v: builtins.isAttrs v && v.type or null == "derivation";
      perSystem = name: outputs.${name}.${system} or { };
      drvErrors =
        name:
        lib.concatLists (
          lib.mapAttrsToList (
            attr: v:
            lib.optional (!isDrv v) "${name}.${system}.${attr} is not a derivation"
            ++ lib.optional (v ? __functor) "${name}.${system}.${attr} has a __functor"
          ) (perSystem name)
        );
      appErrors = lib.concatLists (
        lib.mapAttrsToList (
          attr: app:
          if !builtins.isAttrs app then
            [ "app 'apps.${system}.${attr}' is not an attribute set" ]
          else
            lib.optional (app.type or null != "app") "app 'apps.${system}.${attr}' lacks attribute 'type'"
            ++ lib.optional (!app ? program) "app 'apps.${system}.${attr}' lacks attribute 'program'"
            ++ map (a: "app 'apps.${system}.${attr}' has unsupported attribute '${a}'") (
              builtins.filter (
                a:
                !builtins.elem a [
                  "type"
                  "program"
                  "meta"
                ]
              ) (builtins.attrNames app)
            )
        ) (perSystem "apps")
      );
    in
    {
      errors =
        drvErrors "packages"
        ++ drvErrors "checks"
        ++ appErrors
        ++ lib.optional (outputs ? formatter && !isDrv outputs.formatter.${system}) "formatter.${system} is not a derivation";
      unknown = builtins.filter (n: !builtins.elem n known) (builtins.attrNames outputs);
    };

  lollypops = flakeWith {
    nixpkgs = stubPkgsWith {
      origin = "nixpkgs";
      goVersion = "1.26.8";
    };
    nixpkgs-go = stubPkgsWith {
      origin = "nixpkgs-go";
      goVersion = "1.26.8";
    };
  };
  shape = flakeCheck "aarch64-darwin" lollypops;
in
[
  # The spellings, and their warnings.
  (check "original: group-name is the group" (
    (secret "kartoffel" "ssl/cert-key").group == "nginx"
    && (secret "kartoffel" "github-token").group == "users"
  ) "")
  (warns "group-name warns" kartoffel.lollypops.warnings
    ''lollypops.secrets.files."ssl/cert-key".group-name: ''
    "lollypops.secrets.files.\"ssl/cert-key\".group"
  )
  (warns "home-manager group-name warns" pinpox.warnings "lollypops.secrets.files.github-token.group-name: " "")
  (check "original: default-cmd runs each default secret command" (
    (secret "kartoffel" "borg-passphrase").cmd
    == "/nix/store/4q1dgbcvkj4ykpvbhipmgsq8vhhjnkrd-password-store-1.7.4/bin/pass nixos-secrets/kartoffel/borg-passphrase"
    && (secret "kartoffel" "github-token").cmd == "rbw get github-token"
    && (secret "kartoffel" "ssl/cert-key").cmd
      == "/nix/store/4q1dgbcvkj4ykpvbhipmgsq8vhhjnkrd-password-store-1.7.4/bin/pass nixos-secrets/kartoffel/ssl/cert-key"
  ) (builtins.toJSON (map (s: s.cmd) inv.kartoffel.secrets.files)))
  (check "original: deployment.group is a tag" (
    inv.kartoffel.deployment.tags == [ "servers" ] && inv.birne.deployment.tags == [ "pis" ]
  ) "")
  (warns "deployment.group warns" kartoffel.lollypops.warnings "lollypops.deployment.group: "
    ''lollypops.deployment.tags = [ "servers" ]''
  )
  (check "original: trailing slashes of config-dir and default-dir are dropped" (
    inv.kartoffel.deployment.config-dir == "/etc/nixos"
    && (secret "kartoffel" "borg-passphrase").path == "/var/src/lollypops-secrets/borg-passphrase"
  ) "")
  (check "original: opts written as command lines are split into arguments" (
    inv.kartoffel.deployment.ssh.opts == [
      "-p"
      "2522"
    ]
    && inv.birne.deployment.ssh.opts == [
      "-i"
      "/home/deploy/.ssh/id_ed25519"
      "-o"
      "StrictHostKeyChecking=accept-new"
      "-o"
      "ConnectTimeout=5"
    ]
    && inv.birne.deployment.sudo.opts == [
      "-u"
      "root"
    ]
  ) (builtins.toJSON [ inv.kartoffel.deployment.ssh.opts inv.birne.deployment.ssh.opts ]))
  (warns "ssh.opts as a command line warns" kartoffel.lollypops.warnings
    ''lollypops.deployment.ssh.opts: "-p 2522" is read as the arguments "-p" "2522"''
    ""
  )
  (warns "sudo.opts as a command line warns" birne.lollypops.warnings
    ''lollypops.deployment.sudo.opts: "-u root" is read as''
    ""
  )
  (check "original: an unknown dep fails only its task, when it runs" (
    failedMessages birne.lollypops.assertions == [ ]
    && inv.birne.extraTasks.push-closure.deps == [ "check-vars" ]
    && inv.birne.extraTasks.push-closure.cmds == [
      ''echo 'lollypops: birne:push-closure cannot run: lollypops.extraTasks.push-closure.deps: unknown task "build"; known tasks of this host: check-vars, deploy-flake, deploy-secrets, rebuild, diff, hello, push-closure' >&2; exit 1''
    ]
    && inv.birne.extraTasks.hello.cmds == [ "echo hello from {{.HOSTNAME}}" ]
    && inv.birne.tasks == [
      "deploy-flake"
      "deploy-secrets"
      "rebuild"
    ]
  ) (builtins.toJSON inv.birne.extraTasks))
  (warns "an unknown dep warns" birne.lollypops.warnings
    ''lollypops.extraTasks.push-closure.deps: unknown task "build"''
    "running it fails"
  )
  (check "original: the warnings reach NixOS's warnings" (
    lib.all (w: builtins.elem w kartoffel.warnings) kartoffel.lollypops.warnings
    && builtins.elem (builtins.head pinpox.warnings) kartoffel.home-manager.users.pinpox.warnings
  ) "")
  (
    let
      app = original.apps.x86_64-linux.default;
      pkg = original.packages.x86_64-linux.lollypops;
    in
    check "original: the app applied to { configFlake } and the package overridden with it" (
      app.type == "app"
      && hasInfix "-lollypops-hosts.json" pkg.text
      && app.program == "${pkg.outPath}/bin/lollypops"
      && pkg.meta.mainProgram == "lollypops"
    ) (builtins.toJSON { inherit (app) program; })
  )
  (check "the package alone is the runner" (
    lollypops.packages.x86_64-linux.default.args.subPackages or null == [
      "cmd/lollypops"
      "cmd/lollypops-step"
    ]
  ) "")

  # ssh.opts and sudo.opts: what is split, kept, refused.
  (
    let
      d = optsOf {
        lollypops.deployment.ssh.opts = [
          "-o"
          "ProxyCommand=ssh -W %h:%p jump.example.org"
          "-J jump.example.org"
        ];
      };
    in
    check "opts: an argument with spaces after its option is kept; an option and its argument are split" (
      d.ssh.opts == [
        "-o"
        "ProxyCommand=ssh -W %h:%p jump.example.org"
        "-J"
        "jump.example.org"
      ]
    ) (builtins.toJSON d.ssh.opts)
  )
  (check "opts: one argument per element draws no warning" (
    warningsOf {
      lollypops.deployment.ssh.opts = [
        "-p"
        "2522"
        "-o"
        "ProxyCommand=nc %h %p"
      ];
    } == [ ]
  ) "")
  (firesWith "opts: quotes" ''lollypops.deployment.ssh.opts: "-o 'ProxyCommand=nc %h %p'" holds several arguments with shell syntax'' {
    lollypops.deployment.ssh.opts = [ "-o 'ProxyCommand=nc %h %p'" ];
  })
  (firesWith "opts: a variable" ''lollypops.deployment.sudo.opts: "-u $USER" holds several arguments with shell syntax'' {
    lollypops.deployment.sudo.opts = [ "-u $USER" ];
  })
  (firesWith "opts: a backslash" "lollypops.deployment.ssh.opts: " {
    lollypops.deployment.ssh.opts = [ "-i my\\ key" ];
  })
  (firesWith "opts: an attached argument with spaces" ''lollypops.deployment.ssh.opts: "-oProxyCommand=nc %h %p" is ambiguous'' {
    lollypops.deployment.ssh.opts = [ "-oProxyCommand=nc %h %p" ];
  })
  (rejects "a config-dir of /" { lollypops.deployment.config-dir = "/"; } (
    h: h.config.lollypops.deployment.config-dir
  ))
  (rejects "an unclean config-dir with a trailing slash" { lollypops.deployment.config-dir = "/etc//nixos/"; } (
    h: h.config.lollypops.deployment.config-dir
  ))
  (rejects "a group that is no tag" { lollypops.deployment.group = "my servers"; } (
    h: h.config.lollypops.deployment.tags
  ))

  # The Go that builds the runner.
  (check "go: nixpkgs' Go builds the runner when recent enough, without nixpkgs-go" (
    (runnerWithGo "1.26.4" null).origin == "nixpkgs"
  ) "")
  (check "go: nixpkgs-go builds it when nixpkgs' Go is older" (
    (runnerWithGo "1.24.9" "1.26.8").origin == "nixpkgs-go"
  ) "")
  (check "go: neither recent enough is an error" (
    !(builtins.tryEval (runnerWithGo "1.24.9" "1.25.0").drvPath or true).success
  ) "")

  # The flake's outputs, as `nix flake check` of Nix >= 2.25 sees them.
  (check "flake check: only the documented __functor of apps.<system>.default is an error" (
    shape.errors == [ "app 'apps.aarch64-darwin.default' has unsupported attribute '__functor'" ]
  ) (builtins.toJSON shape.errors))
  (check "flake check: the only unknown outputs are the home-manager module's names" (
    shape.unknown == [
      "hmModule"
      "homeModules"
    ]
  ) (builtins.toJSON shape.unknown))
  (check "flake check: an app applied to { configFlake } passes" (
    (flakeCheck "x86_64-linux" { apps = original.apps; }).errors == [ ]
  ) "")
]
