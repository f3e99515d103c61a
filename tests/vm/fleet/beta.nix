# beta: a non-root ssh user that deploys through sudo; root cannot log in.
{ lib, pkgs, ... }:
let
  keys = import (pkgs.path + "/nixos/tests/ssh-keys.nix") pkgs;
in
{
  users.users.deploy = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
    openssh.authorizedKeys.keys = [ keys.snakeOilPublicKey ];
  };
  users.users.root.openssh.authorizedKeys.keys = lib.mkForce [ ];
  security.sudo.wheelNeedsPassword = false;
  # `nix copy` to beta runs as deploy.
  nix.settings.trusted-users = [ "deploy" ];
}
