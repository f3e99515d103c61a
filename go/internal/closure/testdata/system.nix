# A tiny stand-in for a NixOS toplevel, for collect_test.go: built by
# /bin/sh with the build machine's tools (no nixpkgs, sandbox off). Its
# kernel and initrd are symlinks into store paths of their own, as on
# NixOS, and it references one store path per package.
{
  host ? "host1",
  version ? "24.05.20240601.abcdef",
  kernel ? "6.6.30",
  packages ? [ "hello-2.12.1" "hello-2.12.1-man" ],
  etc ? "one",
}:
let
  mk =
    name: script:
    derivation {
      inherit name;
      system = builtins.currentSystem;
      builder = "/bin/sh";
      args = [ "-c" script ];
      PATH = "/usr/bin:/bin";
    };
  linux = mk "linux-${kernel}" ''mkdir -p $out && echo "linux ${kernel}" >$out/bzImage'';
  initrd = mk "initrd-linux-${kernel}" ''mkdir -p $out && echo "initrd ${kernel}" >$out/initrd'';
  etcDir = mk "etc" ''mkdir -p $out/etc && echo "${etc}" >$out/etc/motd'';
  pkgs = map (p: mk p ''mkdir -p $out && echo "${p}" >$out/name'') packages;
in
mk "nixos-system-${host}-${version}" ''
  mkdir -p $out
  ln -s ${linux}/bzImage $out/kernel
  ln -s ${initrd}/initrd $out/initrd
  ln -s ${etcDir}/etc $out/etc
  for p in ${toString pkgs}; do echo "$p" >>$out/packages; done
''
