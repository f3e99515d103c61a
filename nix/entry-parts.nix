# The parts of an inventory entry that a NixOS host (nix/entry.nix) and a
# home-manager configuration deployed on its own (nix/project-home.nix)
# share, projected one field at a time. Builtins only.
{
  # A secret; hmUser is the home-manager user it belongs to inside a NixOS
  # host, or null.
  secret = hmUser: s: {
    inherit (s)
      name
      cmd
      path
      owner
      group
      mode
      upload-at
      allow-empty
      ;
    home-manager-user = hmUser;
    # Only the NixOS module has them (a home-manager user's secrets do not).
    restartUnits = s.restartUnits or [ ];
    reloadUnits = s.reloadUnits or [ ];
  };

  # How the runner reaches the target: lollypops.deployment.{ssh,sudo}.
  reach = d: {
    ssh = {
      inherit (d.ssh)
        host
        user
        command
        opts
        host-key-policy
        host-key
        ;
    };
    sudo = {
      inherit (d.sudo) enable command opts;
    };
  };
}
