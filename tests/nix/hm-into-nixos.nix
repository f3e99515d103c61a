# Importing the home-manager module into NixOS must fail with an error that
# says so (lollypops' original gave "option already declared", its #13).
# go/internal/config/nix_test.go runs this and reads the error.
{ nixpkgsLib }:
let
  lib = import (nixpkgsLib + "/lib");
in
(lib.evalModules {
  class = "nixos";
  modules = [
    ../../nix/module.nix
    ../../nix/hm-module.nix
    ./stubs/nixos.nix
    ./stubs/nixos-units.nix
  ];
}).config.lollypops.secrets.default-dir
