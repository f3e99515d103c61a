# Every target, both as the VM the test boots and as the system lollypops
# deploys to it (./hosts.nix). Keeping the two alike keeps the network and
# the test driver's connection through each switch.
{ lib, pkgs, ... }:
let
  keys = import (pkgs.path + "/nixos/tests/ssh-keys.nix") pkgs;
in
{
  services.openssh = {
    enable = true;
    # One known key for every target: the deployer's known_hosts and the
    # pinned host key need it before the VMs boot.
    hostKeys = [
      {
        type = "ecdsa";
        path = "/etc/ssh/ssh_host_ecdsa_key";
      }
    ];
  };
  environment.etc."ssh/ssh_host_ecdsa_key" = {
    source = keys.snakeOilPrivateKey;
    mode = "0600";
  };
  users.users.root.openssh.authorizedKeys.keys = [ keys.snakeOilPublicKey ];

  nix.settings = {
    experimental-features = [
      "nix-command"
      "flakes"
    ];
    substituters = lib.mkForce [ ];
  };

  system.switch.enable = true;
  virtualisation.writableStore = true;
  documentation.enable = false;
  boot.loader.grub.enable = false;
}
