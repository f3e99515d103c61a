package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The synthetic module set: files shaped like NixOS's modules, written into
// a directory at run time (never committed). Its size is the issue's "on
// the order of 1,500 modules and 10,000 options"; docs/benchmarks.md says
// why that is NixOS's shape.
//
// Modules are numbered; module i's kind is fixed by i%20, so the mix is the
// same at every size:
//
//	0–7   service   services.gK.sI: enable, user, group (default: user),
//	                dataDir (default from user), port, openFirewall, logLevel
//	                (enum), extraArgs (listOf str), settings (a submodule with
//	                a freeformType and two options whose defaults read other
//	                options); config under mkIf/mkMerge: users, a systemd
//	                unit, an /etc file, a firewall port, an assertion
//	8–13  program   programs.pI: enable, package, extraConfig (lines),
//	                aliases (attrsOf str); config under mkIf
//	14–16 hardware  hardware.hI: enable, firmware (default: enable), level
//	                (ints.between)
//	17–18 instances services.gK.dI: enable, instances (attrsOf (submodule
//	                ({ name, ... }: …)) with five options, defaults from name);
//	                config: a systemd unit and an assertion per instance
//	19    profile   profiles.eI.enable; imports a chain of shared helper
//	                modules; unconditional mkDefault settings of a service and
//	                mkIf-guarded enables of others
//
// Around them: core modules declaring what NixOS's core does and the
// generated modules define (systemd.services, environment.etc,
// networking.firewall, boot, environment.systemPackages, …), the helper
// chain, and tests/nix/stubs/nixos.nix (networking.hostName, assertions,
// warnings, users.users, users.groups), the same stand-ins the evaluation
// tests use. Directories import their members through default.nix files
// (module-list.nix → services/default.nix → services/gK/default.nix →
// members), as imports chains.

// Per-kind option counts, as NixOS counts options (`optionAttrSetToDocList`:
// a submodule's options count once, under `<name>`, and so does the
// submodule-typed option itself).
const (
	optsService  = 11 // 9 + settings.listen, settings.verbose
	optsProgram  = 4
	optsHardware = 3
	optsInstance = 7 // enable, instances, and 5 options of an instance
	optsProfile  = 1
	// Core modules (see coreModules), the stub (5 options + users.users.<name>.group)
	// and the helper chain (none).
	optsCore  = 14 + 7 + 4 + 3 + 1 + 3 // systemd: services, 9 of a service, paths, 3 of a path
	optsStub  = 6
	helpers   = 10
	groupSize = 25 // modules per services/programs/hardware/profiles subdirectory
)

// synthetic describes a generated module set.
type synthetic struct {
	Dir     string
	Modules int // files that are modules with options or config (leaves)
	Imports int // default.nix files that only import others
	Options int // options, counted as NixOS counts them
	N       int // generated modules (the i%20 mix)
}

func kindOf(i int) string {
	switch r := i % 20; {
	case r <= 7:
		return "service"
	case r <= 13:
		return "program"
	case r <= 16:
		return "hardware"
	case r <= 18:
		return "instances"
	}
	return "profile"
}

// category is the top-level directory (and option prefix) of a kind.
func category(kind string) string {
	switch kind {
	case "service", "instances":
		return "services"
	case "program":
		return "programs"
	case "hardware":
		return "hardware"
	}
	return "profiles"
}

// optionPath is module i's option prefix, as Nix attribute path.
func optionPath(i int) string {
	switch kindOf(i) {
	case "service":
		return fmt.Sprintf("services.g%d.s%d", i/groupSize, i)
	case "instances":
		return fmt.Sprintf("services.g%d.d%d", i/groupSize, i)
	case "program":
		return fmt.Sprintf("programs.p%d", i)
	case "hardware":
		return fmt.Sprintf("hardware.h%d", i)
	}
	return fmt.Sprintf("profiles.e%d", i)
}

func fileName(i int) string {
	return fmt.Sprintf("m%d.nix", i)
}

// generatedFor is the number of generated modules that makes the whole set (core, helpers, stub, generated) hold `modules` leaves.
func generatedFor(modules int) int {
	return max(modules-len(coreModules)-helpers-1, 20)
}

// writeSynthetic writes a module set of about `modules` leaf modules into
// dir; stub is tests/nix/stubs/nixos.nix's text.
func writeSynthetic(dir string, modules int, stub []byte) (*synthetic, error) {
	n := generatedFor(modules)
	s := &synthetic{Dir: dir, N: n}
	write := func(rel, text string) error {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(text), 0o644)
	}
	if err := write("stubs/nixos.nix", string(stub)); err != nil {
		return nil, err
	}
	s.Modules++
	s.Options += optsStub
	for name, text := range coreModules {
		if err := write("core/"+name, text); err != nil {
			return nil, err
		}
		s.Modules++
	}
	s.Options += optsCore
	for h := range helpers {
		if err := write(fmt.Sprintf("common/helper%d.nix", h), helperModule(h)); err != nil {
			return nil, err
		}
		s.Modules++
	}

	// Members of each subdirectory, for its default.nix.
	members := map[string][]string{}
	var dirs []string
	for i := range n {
		kind := kindOf(i)
		sub := fmt.Sprintf("%s/g%d", category(kind), i/groupSize)
		if _, ok := members[sub]; !ok {
			dirs = append(dirs, sub)
		}
		members[sub] = append(members[sub], fileName(i))
		var text string
		switch kind {
		case "service":
			text, s.Options = serviceModule(i), s.Options+optsService
		case "program":
			text, s.Options = programModule(i), s.Options+optsProgram
		case "hardware":
			text, s.Options = hardwareModule(i), s.Options+optsHardware
		case "instances":
			text, s.Options = instancesModule(i), s.Options+optsInstance
		default:
			text, s.Options = profileModule(i, n), s.Options+optsProfile
		}
		if err := write(sub+"/"+fileName(i), text); err != nil {
			return nil, err
		}
		s.Modules++
	}
	tops := map[string][]string{}
	var topOrder []string
	for _, sub := range dirs {
		if err := write(sub+"/default.nix", importsModule(members[sub])); err != nil {
			return nil, err
		}
		s.Imports++
		top, g, _ := strings.Cut(sub, "/")
		if _, ok := tops[top]; !ok {
			topOrder = append(topOrder, top)
		}
		tops[top] = append(tops[top], g+"/default.nix")
	}
	list := []string{"./stubs/nixos.nix"}
	for name := range coreModules {
		list = append(list, "./core/"+name)
	}
	for _, top := range topOrder {
		if err := write(top+"/default.nix", importsModule(tops[top])); err != nil {
			return nil, err
		}
		s.Imports++
		list = append(list, "./"+top+"/default.nix")
	}
	var b strings.Builder
	b.WriteString("# The synthetic NixOS-like module set (generated by benchnix).\n[\n")
	slices.Sort(list)
	for _, p := range list {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	b.WriteString("]\n")
	if err := write("module-list.nix", b.String()); err != nil {
		return nil, err
	}
	return s, nil
}

func importsModule(files []string) string {
	var b strings.Builder
	b.WriteString("{\n  imports = [\n")
	for _, f := range files {
		fmt.Fprintf(&b, "    ./%s\n", f)
	}
	b.WriteString("  ];\n}\n")
	return b.String()
}

const header = `{ config, lib, ... }:
let
  inherit (lib) mkDefault mkEnableOption mkIf mkMerge mkOption types;
  cfg = config.%s;
in
`

func serviceModule(i int) string {
	p := optionPath(i)
	name := fmt.Sprintf("s%d", i)
	return fmt.Sprintf(header, p) + fmt.Sprintf(`{
  options.%[1]s = {
    enable = mkEnableOption "the %[2]s service";
    user = mkOption {
      type = types.str;
      default = "%[2]s";
      description = "User account under which %[2]s runs.";
    };
    group = mkOption {
      type = types.str;
      default = cfg.user;
      defaultText = lib.literalExpression "config.%[1]s.user";
      description = "Group under which %[2]s runs.";
    };
    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/${cfg.user}";
      defaultText = lib.literalExpression "/var/lib/\${config.%[1]s.user}";
      description = "Directory where %[2]s keeps its state.";
    };
    port = mkOption {
      type = types.port;
      default = %[3]d;
      description = "Port %[2]s listens on.";
    };
    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to open the port of %[2]s in the firewall.";
    };
    logLevel = mkOption {
      type = types.enum [ "debug" "info" "warn" "error" ];
      default = "info";
      description = "How much %[2]s logs.";
    };
    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Extra command line arguments of %[2]s.";
    };
    settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf (types.oneOf [ types.str types.int types.bool ]);
        options.listen = mkOption {
          type = types.str;
          default = "127.0.0.1:${toString cfg.port}";
          description = "Address %[2]s binds.";
        };
        options.verbose = mkOption {
          type = types.bool;
          default = cfg.logLevel == "debug";
          description = "Whether %[2]s logs verbosely.";
        };
      };
      default = { };
      description = "Configuration of %[2]s, written to /etc/%[2]s/config.";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = cfg.port != 22;
          message = "%[1]s.port: 22 is sshd's.";
        }
      ];
      users.users.${cfg.user}.group = cfg.group;
      users.groups.${cfg.group} = { };
      systemd.services.%[2]s = {
        description = "%[2]s";
        wantedBy = [ "multi-user.target" ];
        after = [ "network.target" ];
        environment.LOG_LEVEL = cfg.logLevel;
        serviceConfig = {
          User = cfg.user;
          ExecStart = "/run/current-system/sw/bin/%[2]s ${lib.escapeShellArgs cfg.extraArgs}";
          StateDirectory = baseNameOf cfg.dataDir;
        };
      };
      environment.etc."%[2]s/config".text = lib.generators.toKeyValue { } cfg.settings;
    }
    (mkIf cfg.openFirewall { networking.firewall.allowedTCPPorts = [ cfg.port ]; })
  ]);
}
`, p, name, 1024+i)
}

func programModule(i int) string {
	p := optionPath(i)
	name := fmt.Sprintf("p%d", i)
	return fmt.Sprintf(header, p) + fmt.Sprintf(`{
  options.%[1]s = {
    enable = mkEnableOption "%[2]s";
    package = mkOption {
      type = types.str;
      default = "%[2]s";
      description = "The %[2]s package.";
    };
    extraConfig = mkOption {
      type = types.lines;
      default = "";
      description = "Lines appended to /etc/%[2]s.conf.";
    };
    aliases = mkOption {
      type = types.attrsOf types.str;
      default = { };
      description = "Aliases %[2]s defines.";
    };
  };

  config = mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];
    environment.etc."%[2]s.conf".text =
      cfg.extraConfig + lib.concatStrings (lib.mapAttrsToList (k: v: "alias ${k}=${v}\n") cfg.aliases);
  };
}
`, p, name)
}

func hardwareModule(i int) string {
	p := optionPath(i)
	name := fmt.Sprintf("h%d", i)
	return fmt.Sprintf(header, p) + fmt.Sprintf(`{
  options.%[1]s = {
    enable = mkEnableOption "support for %[2]s";
    firmware = mkOption {
      type = types.bool;
      default = cfg.enable;
      defaultText = lib.literalExpression "config.%[1]s.enable";
      description = "Whether to load the firmware of %[2]s.";
    };
    level = mkOption {
      type = types.ints.between 0 9;
      default = 3;
      description = "Power level of %[2]s.";
    };
  };

  config = mkIf cfg.enable {
    boot.kernelModules = [ "%[2]s" ];
    boot.kernelParams = mkIf cfg.firmware [ "%[2]s.level=${toString cfg.level}" ];
  };
}
`, p, name)
}

func instancesModule(i int) string {
	p := optionPath(i)
	name := fmt.Sprintf("d%d", i)
	return fmt.Sprintf(header, p) + fmt.Sprintf(`{
  options.%[1]s = {
    enable = mkEnableOption "the %[2]s instances";
    instances = mkOption {
      default = { };
      description = "Instances of %[2]s, by name.";
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = {
              enable = mkOption {
                type = types.bool;
                default = true;
                description = "Whether to run this instance.";
              };
              port = mkOption {
                type = types.port;
                default = %[3]d;
                description = "Port of the instance.";
              };
              user = mkOption {
                type = types.str;
                default = "%[2]s-${name}";
                description = "User of the instance.";
              };
              dataDir = mkOption {
                type = types.str;
                default = "/var/lib/%[2]s/${name}";
                description = "State directory of the instance.";
              };
              extraFlags = mkOption {
                type = types.listOf types.str;
                default = [ ];
                description = "Extra flags of the instance.";
              };
            };
          }
        )
      );
    };
  };

  config = mkIf cfg.enable {
    assertions = lib.mapAttrsToList (name: inst: {
      assertion = inst.port > 1024;
      message = "%[1]s.instances.${name}.port: must be above 1024.";
    }) cfg.instances;
    systemd.services = lib.mapAttrs' (
      name: inst:
      lib.nameValuePair "%[2]s-${name}" {
        enable = inst.enable;
        wantedBy = [ "multi-user.target" ];
        serviceConfig.User = inst.user;
        script = "exec %[2]s --port ${toString inst.port} ${lib.escapeShellArgs inst.extraFlags}";
      }
    ) cfg.instances;
  };
}
`, p, name, 20000+i)
}

// profileModule imports the helper chain and sets options of modules
// elsewhere in the set (the kind-0 service and kind-8 program of its own
// block of 20, which exist whatever n is).
func profileModule(i, n int) string {
	p := optionPath(i)
	name := fmt.Sprintf("e%d", i)
	base := i - i%20
	return fmt.Sprintf(header, p) + fmt.Sprintf(`{
  imports = [ ../../common/helper%[3]d.nix ];

  options.%[1]s.enable = mkOption {
    type = types.bool;
    default = false;
    description = "Whether to apply the %[2]s profile.";
  };

  config = mkMerge [
    {
      %[4]s.logLevel = mkDefault "warn";
      environment.etc."profiles/%[2]s".text = mkDefault "%[2]s";
    }
    (mkIf cfg.enable {
      %[4]s.enable = true;
      %[5]s.enable = mkDefault true;
      time.timeZone = mkDefault "UTC";
    })
  ];
}
`, p, name, (i/20)%helpers, optionPath(base), optionPath(base+8))
}

// helperModule is one link of the helper chain: each imports the next, the
// last sets a default.
func helperModule(h int) string {
	if h == helpers-1 {
		return `{ lib, ... }:
{
  i18n.defaultLocale = lib.mkDefault "en_US.UTF-8";
}
`
	}
	return fmt.Sprintf("{\n  imports = [ ./helper%d.nix ];\n}\n", h+1)
}

// coreModules declare the options NixOS's core modules declare and the
// generated modules define.
var coreModules = map[string]string{
	"systemd.nix": `{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.systemd.services = mkOption {
    default = { };
    description = "Definition of systemd service units.";
    type = types.attrsOf (
      types.submodule (
        { name, ... }:
        {
          options = {
            enable = mkOption {
              type = types.bool;
              default = true;
              description = "Whether to enable the unit.";
            };
            description = mkOption {
              type = types.str;
              default = name;
              description = "Description of the unit.";
            };
            wantedBy = mkOption {
              type = types.listOf types.str;
              default = [ ];
              description = "Units that want this one.";
            };
            after = mkOption {
              type = types.listOf types.str;
              default = [ ];
              description = "Units this one starts after.";
            };
            environment = mkOption {
              type = types.attrsOf types.str;
              default = { };
              description = "Environment of the unit's processes.";
            };
            serviceConfig = mkOption {
              type = types.attrsOf (types.oneOf [ types.str types.int types.bool (types.listOf types.str) ]);
              default = { };
              description = "The [Service] section.";
            };
            script = mkOption {
              type = types.lines;
              default = "";
              description = "Shell commands the unit runs.";
            };
            preStart = mkOption {
              type = types.lines;
              default = "";
              description = "Shell commands run before the unit's script.";
            };
            unitConfig = mkOption {
              type = types.attrsOf (types.oneOf [ types.str types.int types.bool (types.listOf types.str) ]);
              default = { };
              description = "The [Unit] section.";
            };
          };
        }
      )
    );
  };
  # lollypops' secrets have a path unit each.
  options.systemd.paths = mkOption {
    default = { };
    description = "Definition of systemd path units.";
    type = types.attrsOf (
      types.submodule {
        options = {
          description = mkOption {
            type = types.str;
            default = "";
            description = "Description of the unit.";
          };
          wantedBy = mkOption {
            type = types.listOf types.str;
            default = [ ];
            description = "Units that want this one.";
          };
          pathConfig = mkOption {
            type = types.attrsOf types.str;
            default = { };
            description = "The [Path] section.";
          };
        };
      }
    );
  };
}
`,
	"etc.nix": `{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.environment.etc = mkOption {
    default = { };
    description = "Files in /etc.";
    type = types.attrsOf (
      types.submodule (
        { name, ... }:
        {
          options = {
            enable = mkOption {
              type = types.bool;
              default = true;
              description = "Whether to create this file.";
            };
            target = mkOption {
              type = types.str;
              default = name;
              description = "Name relative to /etc.";
            };
            text = mkOption {
              type = types.nullOr types.lines;
              default = null;
              description = "Contents.";
            };
            mode = mkOption {
              type = types.str;
              default = "symlink";
              description = "Mode, or symlink.";
            };
            user = mkOption {
              type = types.str;
              default = "+0";
              description = "Owner.";
            };
            group = mkOption {
              type = types.str;
              default = "+0";
              description = "Group.";
            };
          };
        }
      )
    );
  };
}
`,
	"firewall.nix": `{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.networking.firewall = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Whether to enable the firewall.";
    };
    allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
      description = "Open TCP ports.";
    };
    allowedUDPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
      description = "Open UDP ports.";
    };
    logRefusedConnections = mkOption {
      type = types.bool;
      default = true;
      description = "Whether to log refused connections.";
    };
  };
}
`,
	"boot.nix": `{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.boot = {
    kernelModules = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Kernel modules loaded at boot.";
    };
    kernelParams = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Kernel command line parameters.";
    };
    loader.timeout = mkOption {
      type = types.nullOr types.int;
      default = 5;
      description = "Boot menu timeout.";
    };
  };
}
`,
	"packages.nix": `{ lib, ... }:
{
  options.environment.systemPackages = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [ ];
    description = "Packages in the system profile (names here).";
  };
}
`,
	"misc.nix": `{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    system.stateVersion = mkOption {
      type = types.str;
      default = "25.05";
      description = "The release the host's state was created with.";
    };
    time.timeZone = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Time zone.";
    };
    i18n.defaultLocale = mkOption {
      type = types.str;
      default = "C.UTF-8";
      description = "Default locale.";
    };
  };
}
`,
}
