# A tiny stand-in for a NixOS system, built by a fake host's own Nix (see
# docs/fakehosts.md). It needs no nixpkgs: each derivation is built by
# /bin/sh with the build machine's own tools (sandbox off), and its output
# has the shape of a NixOS toplevel (config.system.build.toplevel):
#
#   bin/switch-to-configuration  activate  dry-activate  nixos-version
#   init-interface-version  kernel  initrd  kernel-modules  specialisation/
#   sw/bin/{nixos-rebuild,systemctl,systemd-run,journalctl,reboot,sh,bash}
#
# kernel, initrd and kernel-modules link into store paths of their own, as
# on NixOS (…-linux-6.6.30/bzImage, …-initrd-linux-6.6.30/initrd,
# …-linux-6.6.30-modules): two systems with the same kernel share them, so a
# deployer can tell whether a new system changes the kernel or its modules
# (a closure diff, the reboot's check).
#
# The knobs are parameters, so that each setting is its own store path.
{
  hostName,
  # Flakes evaluate purely: builtins.currentSystem is not available there.
  system,
  # The kernel's version: the store path linux-<kernel>, whose bzImage
  # holds the version.
  kernel ? "6.6.30",
  # The initrd's contents: the store path initrd-linux-<kernel>.
  initrd ? "fake-initrd-1",
  # The kernel modules' contents (extraModulePackages): the store path
  # linux-<kernel>-modules, which kernel-modules links to.
  kernelModules ? "fake-modules-1",
  version ? "24.05.fake",
  # The activation script fails; as on NixOS, /run/current-system still
  # points to the new system afterwards, and switch-to-configuration
  # exits 2.
  failActivation ? false,
  # The system has no sshd: switch and test stop the running one.
  stopSshd ? false,
  # The system's web service (httpd.service on the host's HTTP port):
  # "" none, "healthy" (GET / answers 200) or "unhealthy" (500); the body
  # names the system.
  httpd ? "",
  # Names such as "hello-2.12": each becomes a small store path that the
  # system references, so that its closure has package-like paths.
  packages ? [ ],
  # Seconds switch and test spend in "activating the configuration..."
  # ("" = none).
  activationTime ? "",
  # Seconds the host's network (its sshd: listener and sessions) is down
  # during the activation of switch and test ("" = never).
  restartNetwork ? "",
  # Unit names ("foo.service"): they fail in the activation of this system
  # (switch-to-configuration exits 4) and at its boot.
  failUnits ? [ ],
  # Unit names: the activation of this system restarts them (units without
  # a process, active once restarted).
  restartUnits ? [ ],
  # The toplevel's init-interface-version: switch and test from a system
  # with another one exit 100, as NixOS's switch-to-configuration does.
  initInterface ? "systemd 2",
  # The system's pre-switch check fails (unless NIXOS_NO_CHECK=1).
  preSwitchCheckFails ? false,
  # The boot loader: "" (the fake one every host has) or "systemd-boot".
  bootLoader ? "",
  # Names: each is specialisation/<name>, a toplevel of its own with the
  # same parameters and fakehost/specialisation naming it.
  specialisations ? [ ],
  # The secrets' units, lines "<unit>\t<path>", and the services that wait
  # for them, lines "<service>\t<unit>" (System.SecretWaiters). Their
  # program is lollypops' own wait script (secret-wait.sh, written beside
  # this file).
  secretUnits ? "",
  secretWaiters ? "",
}:
let
  package =
    name:
    derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [
        "-c"
        ''mkdir -p "$out/share" && echo "$name" >"$out/share/name"''
      ];
      PATH = "/usr/bin:/bin";
    };
  # A store path holding one file, its contents given.
  file =
    name: file: contents:
    derivation {
      inherit name system file contents;
      builder = "/bin/sh";
      args = [
        "-c"
        ''mkdir -p "$out" && printf '%s\n' "$contents" >"$out/$file"''
      ];
      PATH = "/usr/bin:/bin";
    };
  modules = derivation {
    name = "linux-${kernel}-modules";
    inherit system kernel;
    contents = kernelModules;
    builder = "/bin/sh";
    args = [
      "-c"
      ''mkdir -p "$out/lib/modules/$kernel" && printf '%s\n' "$contents" >"$out/lib/modules/$kernel/modules.fake"''
    ];
    PATH = "/usr/bin:/bin";
  };
  # toplevel "" is the system; toplevel <name> its specialisation <name>.
  toplevel =
    specialisation:
    derivation {
      name = "nixos-system-${hostName}-${version}";
      inherit
        system
        hostName
        version
        specialisation
        ;
      kernel = file "linux-${kernel}" "bzImage" kernel;
      initrd = file "initrd-linux-${kernel}" "initrd" initrd;
      inherit modules;
      builder = "/bin/sh";
      args = [ ./build.sh ];
      PATH = "/usr/bin:/bin";
      inherit
        httpd
        activationTime
        restartNetwork
        failUnits
        restartUnits
        initInterface
        bootLoader
        ;
      inherit secretUnits secretWaiters;
      waitScript = if secretUnits == "" then "" else ./secret-wait.sh;
      failActivation = if failActivation then "1" else "";
      preSwitchCheckFails = if preSwitchCheckFails then "1" else "";
      sshd = if stopSshd then "" else "1";
      packages = map package packages;
      # "<name>=<toplevel>" for each; a specialisation has none.
      specialisations =
        if specialisation == "" then map (n: "${n}=${toplevel n}") specialisations else [ ];
      lib = ./lib.sh;
      switchToConfiguration = ./switch-to-configuration.sh;
      activateScript = ./activate.sh;
      nixosRebuild = ./nixos-rebuild.sh;
      systemctl = ./systemctl.sh;
      systemdRun = ./systemd-run.sh;
      journalctl = ./journalctl.sh;
    };
in
toplevel ""
