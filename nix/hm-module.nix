# The lollypops home-manager module: a user's own secrets, and how to deploy
# the user's home on its own.
#
# Import it in `home-manager.users.<user>` (or `home-manager.sharedModules`)
# of a NixOS host that imports the lollypops NixOS module: lollypops deploys
# the secrets of every such user along with the host's. Import it in a
# `homeConfigurations.<name>` of the flake, and that home is a target of its
# own, on any host with Nix: lollypops builds its activation package,
# copies it, activates it as the user and writes its secrets (the
# `deployment`, `secrets.remove-stale`, `tasks` and `extraTasks` options,
# which a home inside a NixOS host does not use). It is a home-manager
# module only; importing it into NixOS is an error that says so.
{
  config,
  options,
  lib,
  ...
}@args:
let
  inherit (lib) literalExpression mkOption types;
  secrets = import ./secrets-options.nix { inherit lib; };
  tasks = import ./tasks.nix { inherit lib; };
  reach = import ./deployment-options.nix { inherit lib; };
  reachChecks = reach.checks options cfg.deployment;
  cfg = config.lollypops;
  inherit (config.home) username;
  # home-manager's NixOS module passes the host's configuration.
  osConfig = args.osConfig or null;
in
{
  _class = "homeManager";
  key = "lollypops/home-manager-module";

  # The deployment options of a home deployed on its own: the home's user
  # logs in, with no sudo; the host has no default, a home-manager
  # configuration knows no host name.
  imports = [
    (reach.module {
      host = { };
      user = {
        default = username;
        defaultText = literalExpression "config.home.username";
      };
    })
  ];

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
    }
    // {
      remove-stale = secrets.removeStaleOption;
    };

    tasks = tasks.homeTasksOption;
    extraTasks = tasks.extraTasksOption;

    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      visible = false;
      readOnly = true;
      default =
        secrets.assertions [ "lollypops" "secrets" ] cfg.secrets
        ++ reachChecks.assertions
        ++ tasks.homeAssertions cfg;
      description = ''
        The lollypops part of `assertions`, which `nix run` checks without
        evaluating the rest of the configuration.
      '';
    };

    inventory-entry = mkOption {
      type = types.unspecified;
      internal = true;
      visible = false;
      readOnly = true;
      default =
        { name, ... }:
        import ./project-home.nix {
          inherit name;
          home = {
            inherit config;
            inherit (config.home) activationPackage;
          };
        };
      defaultText = literalExpression "{ name, ... }: import ./project-home.nix { ... }";
      description = ''
        The configuration's entry in the runner's inventory, deployed on its
        own (`homeConfigurations`), given `{ name }`: what the runner
        evaluates of it, in a pure `nix eval` that cannot import lollypops'
        files.
      '';
    };

    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      visible = false;
      readOnly = true;
      default = secrets.warnings cfg.secrets ++ reachChecks.warnings;
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
