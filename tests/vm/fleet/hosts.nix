# The fleet that the deployer deploys in the VM test. The test evaluates
# this file (../default.nix) to pre-build every system the targets switch
# to; the flake in the deployer's VM (./flake.nix) evaluates it with the same
# inputs, so both arrive at the same store paths and nothing is built
# offline. `marker` is all that changes between deployments.
{
  nixpkgs,
  lollypops,
  home-manager,
  # A flake input that only the deployer has; beta reads it.
  extra,
  # Each target's addresses, as the test framework assigns them.
  network,
  marker,
}:
let
  host =
    name: modules:
    nixpkgs.lib.nixosSystem {
      modules = [
        # What keeps a test VM a test VM (no revision, the backdoor, qemu).
        "${nixpkgs}/nixos/lib/testing/nixos-test-base.nix"
        lollypops.nixosModules.lollypops
        network.${name}
        ./common.nix
        ./${name}.nix
        {
          nixpkgs.hostPlatform = "x86_64-linux";
          environment.etc.deployment.text = marker;
        }
        # The failure scenarios of the activation (docs/activation.md):
        # a unit that fails to start (switch-to-configuration exits 4),
        # and a health check slower than confirm-timeout.
        (
          { lib, pkgs, ... }:
          {
            systemd.services = lib.optionalAttrs (marker == "FLAKY") {
              flaky = {
                wantedBy = [ "multi-user.target" ];
                serviceConfig = {
                  Type = "oneshot";
                  ExecStart = "${pkgs.coreutils}/bin/false";
                };
              };
            };
            lollypops.deployment = lib.optionalAttrs (marker == "SLOWCHECK") {
              rollback.confirm-timeout = 5;
              health-checks.slow = {
                cmd = "sleep 12";
                timeout = 20;
                retries = 0;
              };
            };
          }
        )
      ]
      ++ modules;
    };

  keysOf = pkgs: import (pkgs.path + "/nixos/tests/ssh-keys.nix") pkgs;
in
{
  # The defaults: copy, root, evaluation on the host; a pinned host key;
  # secrets from pass, from commands, for a user activation creates, and a
  # home-manager user's.
  alpha = host "alpha" [
    "${home-manager}/nixos"
    (
      { pkgs, ... }:
      {
        lollypops.deployment.ssh.host-key = (keysOf pkgs).snakeOilPublicKey;
        lollypops.secrets.files = {
          db-password = { };
          poison.cmd = "cat /root/poison";
          app-token = {
            cmd = "printf %s app-token-value";
            path = "/var/lib/app/token";
            owner = "app";
            groups = "app";
            mode = "0440";
          };
          late = {
            cmd = "printf %s late-value";
            owner = "late";
            upload-at = "post-activation";
          };
        };

        users.users.late = {
          isSystemUser = true;
          group = "late";
        };
        users.groups.late = { };

        home-manager = {
          useGlobalPkgs = true;
          useUserPackages = true;
          users.alice = {
            imports = [ lollypops.homeModules.default ];
            home.stateVersion = "25.11";
            lollypops.secrets = {
              cmd-name-prefix = "users/alice/";
              files.hm-secret = { };
            };
          };
          # home-manager without lollypops' module: nothing is deployed.
          users.bob.home.stateVersion = "25.11";
        };
      }
    )
  ];

  # archive, a non-root user with sudo, host key accepted on first contact.
  beta = host "beta" [
    {
      lollypops.deployment = {
        deploy-method = "archive";
        ssh.user = "deploy";
        ssh.host-key-policy = "accept-new";
        sudo.enable = true;
      };
      lollypops.secrets.files.beta-secret.cmd = "printf %s beta-secret-value";
      # Evaluating beta needs `extra`, which only `archive` brings along.
      assertions = [
        {
          assertion = builtins.pathExists "${extra}/token";
          message = "beta: the flake input `extra` did not reach the host";
        }
      ];
    }
  ];

  # Evaluated and built on the deployer; the host key is in its known_hosts.
  # A service waits for its secret: ordered after the secret's unit
  # (docs/secrets.md, "Services that wait for their secret"), it records
  # whether the file was there when it started.
  gamma = host "gamma" [
    (
      { config, ... }:
      let
        unit = config.lollypops.secrets.files.gamma-secret.unitName;
      in
      {
        lollypops.deployment.local-evaluation = true;
        lollypops.secrets.files.gamma-secret.cmd = "printf %s gamma-secret-value";
        systemd.services.waiter = {
          wantedBy = [ "multi-user.target" ];
          wants = [ unit ];
          after = [ unit ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
          };
          script = ''
            if [ -e /run/keys/gamma-secret ]; then echo present; else echo absent; fi >>/run/waiter-saw
          '';
        };
      }
    )
  ];
}
