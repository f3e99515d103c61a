# The lollypops app: the runner, given the inventory of a flake's hosts.
#
#   apps.<system>.default = lollypops.apps.<system>.default { configFlake = self; };
#
# `pkgs` are the deployer's (the app's system), never a host's: the commands
# that run on the deployer (ssh, nix, pass, nixos-rebuild) come from here.
{
  lib,
  pkgs,
  runner,
}:
let
  project = import ./inventory.nix { inherit lib; };

  # Tools the runner and the secret commands need on the deployer. They are
  # appended to PATH: the user's own ssh, nix or pass, with their
  # configuration, win; these fill in what is missing.
  tools = {
    inherit (pkgs) openssh nix pass;
    nixos-rebuild = pkgs.nixos-rebuild-ng or pkgs.nixos-rebuild;
  };

  toolsFor =
    inventory:
    let
      hosts = builtins.attrValues inventory.hosts;
      homes = builtins.attrValues inventory.homes;
      secrets = builtins.concatMap (h: h.secrets.files) (hosts ++ homes);
    in
    [
      tools.openssh
      tools.nix
    ]
    # Only for what the hosts use: each pulls a sizeable closure.
    ++ lib.optional (builtins.any (h: h.deployment.local-evaluation) hosts) tools.nixos-rebuild
    ++ lib.optional (builtins.any (s: lib.hasPrefix "pass " s.cmd) secrets) tools.pass;

  # The runner with the inventory of configFlake's hosts.
  wrapperFor =
    configFlake:
    let
      inventory = project configFlake;
      json = pkgs.writeText "lollypops-inventory.json" (builtins.toJSON inventory);
    in
    pkgs.writeShellScriptBin "lollypops" ''
      PATH=''${PATH:+$PATH:}${lib.makeBinPath (toolsFor inventory)}
      export PATH
      exec ${lib.getExe' runner "lollypops"} --inventory ${json} "$@"
    '';

  mkApp = configFlake: {
    type = "app";
    program = lib.getExe (wrapperFor configFlake);
    meta.description = "Deploy the flake's NixOS hosts with lollypops";
  };
in
{
  inherit mkApp wrapperFor tools;

  # `nix run github:lollypops/lollypops` runs the runner with no hosts; the
  # same value, applied to `{ configFlake = self; }`, is the user's app.
  default = mkApp { nixosConfigurations = { }; } // {
    __functor = _: { configFlake, ... }: mkApp configFlake;
  };
}
