# The lollypops home-manager module: a user's own secrets.
#
# Import it in `home-manager.users.<user>` (or `home-manager.sharedModules`)
# of a NixOS host that imports the lollypops NixOS module: lollypops deploys
# the secrets of every such user along with the host's. It is a
# home-manager module only; importing it into NixOS is an error that says so.
{
  config,
  lib,
  ...
}@args:
let
  inherit (lib) literalExpression mkOption types;
  secrets = import ./secrets-options.nix { inherit lib; };
  cfg = config.lollypops;
  inherit (config.home) username;
  # home-manager's NixOS module passes the host's configuration.
  osConfig = args.osConfig or null;
in
{
  _class = "homeManager";
  key = "lollypops/home-manager-module";

  options.lollypops = {
    secrets = secrets.mkOptions {
      cfg = cfg.secrets;
      defaultDir = {
        default = "${config.home.homeDirectory}/lollypops-secrets";
        defaultText = literalExpression ''"''${config.home.homeDirectory}/lollypops-secrets"'';
      };
      owner = {
        default = username;
        defaultText = literalExpression "config.home.username";
      };
      group = {
        default = osConfig.users.users.${username}.group or "users";
        defaultText = literalExpression ''osConfig.users.users.''${config.home.username}.group or "users"'';
      };
    };

    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      visible = false;
      readOnly = true;
      default = secrets.assertions [ "lollypops" "secrets" ] cfg.secrets;
      description = ''
        The lollypops part of `assertions`, which `nix run` checks without
        evaluating the rest of the configuration.
      '';
    };

    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      visible = false;
      readOnly = true;
      default = secrets.warnings cfg.secrets;
      description = ''
        The lollypops part of `warnings`, which `nix run` prints too.
      '';
    };
  };

  config = {
    assertions = cfg.assertions;
    warnings = cfg.warnings;
  };
}
