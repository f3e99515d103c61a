# How lollypops reaches a target: its tags, ssh and sudo options, shared by
# the NixOS module and the home-manager module (a home-manager
# configuration deployed on its own), so both declare them once.
{ lib }:
let
  inherit (lib) literalExpression mkOption showOption types;
  types' = import ./types.nix { inherit lib; };
  compat = import ./compat.nix { inherit lib; };

  # `ssh.opts` and `sudo.opts` as the original lollypops wrote them: what
  # they meant, with a warning (or an assertion, for what cannot be read
  # safely). `path` is `[ "ssh" ]` or `[ "sudo" ]`.
  optsLoc = path: [ "lollypops" "deployment" ] ++ path ++ [ "opts" ];
  opts = path: {
    apply = compat.splitOpts (optsLoc path);
  };
  optsChecks =
    options: path:
    compat.optsChecks (optsLoc path) (
      builtins.concatLists (lib.getAttrFromPath (path ++ [ "opts" ]) options.lollypops.deployment).definitions
    );
in
{
  # A module that declares them under `lollypops.deployment`. `host` and
  # `user` are the `default` (and `defaultText`) of `ssh.host` and
  # `ssh.user`, which differ between a NixOS host and a home. (A module
  # rather than an attribute set: the importing modules declare more
  # options under `lollypops.deployment`.)
  module =
    {
      host,
      user,
    }:
    { config, ... }:
    let
      cfg = config.lollypops.deployment;
    in
    {
      options.lollypops.deployment = {
        tags = mkOption {
          type = types.listOf types'.tag;
          default = [ ];
          example = [
            "web"
            "eu-west"
          ];
          description = ''
            Tags of the host. `lollypops --list-all` lists each tag with its
            hosts.
          '';
        };

        ssh = {
          host = mkOption (
            {
              type = types'.sshHost;
              example = "host1.example.org";
              description = "Address of the host: a name, an ssh_config alias or an IP address.";
            }
            // host
          );

          user = mkOption (
            {
              type = types.nullOr types'.userName;
              example = null;
              description = ''
                User to log in as. `null` leaves the choice to ssh: a `User` in
                ssh_config, else the local user's name.
              '';
            }
            // user
          );

          command = mkOption {
            type = types'.program;
            default = "ssh";
            description = "The ssh client to run on the deployer. Its arguments go in `opts`.";
          };

          opts = mkOption (
            opts [ "ssh" ]
            // {
              type = types.listOf types'.textLine;
              default = [ ];
              example = [
                "-p"
                "2222"
                "-o"
                "ProxyJump=jump.example.org"
              ];
              description = ''
                Extra arguments for ssh, one per element; they are passed as they
                are, never interpreted by a shell. For configurations written for
                the original lollypops, an element that starts with `-` and holds
                several plain words (`"-p 2222"`) is split at its spaces, with a
                warning; one with shell syntax (quotes, `$`, ...) or whose words
                are not options each followed by at most one argument is an
                error.
              '';
            }
          );

          host-key = mkOption {
            type = types.nullOr types'.hostKey;
            default = null;
            example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
            description = ''
              The host's public key (a line of its
              `/etc/ssh/ssh_host_ed25519_key.pub`). When set, lollypops accepts
              only this key from the host, whatever the deployer's
              `known_hosts` says.
            '';
          };

          host-key-policy = mkOption {
            type = types.enum [
              "strict"
              "accept-new"
              "pinned"
            ];
            default = if cfg.ssh.host-key != null then "pinned" else "strict";
            defaultText = literalExpression ''
              if config.lollypops.deployment.ssh.host-key != null then "pinned" else "strict"
            '';
            description = ''
              How the host's key is checked:

              - `strict`: it must already be in the deployer's `known_hosts`.
              - `accept-new`: an unknown host's key is recorded on first
                contact; a changed key is refused.
              - `pinned`: it must be `host-key`.
            '';
          };
        };

        sudo = {
          enable = mkOption {
            type = types.bool;
            default = false;
            description = ''
              Whether to run the commands on the host through sudo, for a
              `ssh.user` that is not root. That user still needs access to the
              Nix daemon (the default on NixOS) and passwordless sudo.
            '';
          };

          command = mkOption {
            type = types'.program;
            default = "sudo";
            example = "doas";
            description = "The sudo program on the host.";
          };

          opts = mkOption (
            opts [ "sudo" ]
            // {
              type = types.listOf types'.textLine;
              default = [ ];
              example = [ "-H" ];
              description = ''
                Extra arguments for the sudo program, one per element (an
                element that starts with `-` and holds several words is read as
                in `ssh.opts`).
              '';
            }
          );
        };
      };
    };

  # The warnings and assertions of these options; `options` and `cfg` are
  # the module's `options` and `config.lollypops.deployment`.
  checks = options: cfg: {
    warnings = (optsChecks options [ "ssh" ]).warnings ++ (optsChecks options [ "sudo" ]).warnings;
    assertions = [
      {
        assertion = cfg.ssh.host-key-policy == "pinned" -> cfg.ssh.host-key != null;
        message = "${showOption [ "lollypops" "deployment" "ssh" "host-key-policy" ]}: \"pinned\" needs the host's public key in lollypops.deployment.ssh.host-key.";
      }
      {
        assertion = cfg.ssh.host-key != null -> cfg.ssh.host-key-policy == "pinned";
        message = "${showOption [ "lollypops" "deployment" "ssh" "host-key" ]}: is set, but host-key-policy is \"${cfg.ssh.host-key-policy}\"; use \"pinned\" or remove the key.";
      }
    ]
    ++ (optsChecks options [ "ssh" ]).assertions
    ++ (optsChecks options [ "sudo" ]).assertions;
  };
}
