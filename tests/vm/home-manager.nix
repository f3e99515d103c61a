# home-manager, for the VM tests only: pinned here rather than as a flake
# input, so that users of the lollypops flake never lock or fetch it. A
# locked fetchTree (rev and narHash) is allowed in pure evaluation and is
# fetched only when a VM test is evaluated.
#
# ec1a8fdf (2026-08-22) is tested upstream against the nixpkgs revision in
# ../../flake.lock (its own flake.lock pins the same one). narHash: the NAR
# hash of the tree at that commit; lastModified: its commit time.
builtins.fetchTree {
  type = "github";
  owner = "nix-community";
  repo = "home-manager";
  rev = "ec1a8fdf74ed3f276148ee106299a2ba0e65d51f";
  narHash = "sha256-XL2qfqmocfsvuEGyomZg4nOZfkuSe8vZtrOX99I+b6I=";
}
