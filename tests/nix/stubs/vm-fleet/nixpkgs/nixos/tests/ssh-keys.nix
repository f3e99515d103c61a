# Stands in for nixpkgs' snakeoil keys in tests/nix (never used to log in).
pkgs: {
  snakeOilPrivateKey = pkgs.writeText "privkey.snakeoil" "";
  snakeOilPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl snakeoil";
}
