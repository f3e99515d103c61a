# `packages.<system>.default`: the runner (nix/package.nix), built as it is.
# Overridden with a `configFlake`, as the original lollypops' README (since
# 2025) has it,
#
#   packages.<system>.lollypops = lollypops.packages.<system>.default.override { configFlake = self; };
#
# it is the runner with the inventory of that flake's hosts: the program of
# `lollypops.apps.<system>.default { configFlake = self; }` (nix/apps.nix).
{
  lib,
  pkgs,
  runner,
  configFlake ? null,
}:
if configFlake == null then
  runner
else
  (import ./apps.nix { inherit lib pkgs runner; }).wrapperFor configFlake
