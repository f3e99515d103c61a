# The lollypops app: the runner, pointed at a flake's hosts.
#
#   apps.<system>.default = lollypops.apps.<system>.default { configFlake = self; };
#
# `pkgs` are the deployer's (the app's system), never a host's: the commands
# that run on the deployer (ssh, nix, pass) come from here.
{
  lib,
  pkgs,
  runner,
}:
let
  # Tools the runner and the secret commands need on the deployer. They are
  # appended to PATH: the user's own ssh, nix or pass, with their
  # configuration, win; these fill in what is missing. pass is the secrets'
  # default command; the app cannot ask the hosts whether they use it
  # without evaluating every one of them.
  tools = {
    inherit (pkgs) openssh nix pass;
  };

  # What the app knows of configFlake without evaluating any host: where it
  # is (its source in the store, locked by narHash, and the directory of
  # its flake.nix in there, for `?dir=` flakes) and its hosts' names. The
  # runner evaluates the hosts a command needs (go/internal/nixeval).
  flakeRef =
    configFlake:
    let
      outPath =
        if configFlake ? outPath then
          "${configFlake.outPath}"
        else
          throw "lollypops: configFlake has no outPath; pass the flake itself, usually `self`, as in `lollypops.apps.<system>.default { configFlake = self; }`.";
      # Nix puts a `?dir=` flake's outPath below its source's.
      root = "${configFlake.sourceInfo.outPath or outPath}";
      dir = lib.removePrefix "/" (lib.removePrefix root outPath);
      narHash = configFlake.narHash or configFlake.sourceInfo.narHash or null;
      escape = builtins.replaceStrings [ "%" "&" "+" "/" "=" "#" "?" " " ] [
        "%25"
        "%26"
        "%2B"
        "%2F"
        "%3D"
        "%23"
        "%3F"
        "%20"
      ];
      query = lib.concatStringsSep "&" (
        lib.optional (dir != "") "dir=${escape dir}" ++ lib.optional (narHash != null) "narHash=${escape narHash}"
      );
    in
    # Without a narHash (not a flake's self), the runner locks the path.
    if lib.hasPrefix root outPath then
      "path:${root}${lib.optionalString (query != "") "?${query}"}"
    else
      "path:${outPath}";

  # The targets' names: NixOS hosts, and home-manager configurations
  # deployed on their own.
  targetNames = configFlake: {
    hosts = builtins.attrNames (configFlake.nixosConfigurations or { });
    homes = builtins.attrNames (configFlake.homeConfigurations or { });
  };

  # The runner, pointed at configFlake's hosts.
  wrapperFor =
    configFlake:
    let
      names = pkgs.writeText "lollypops-hosts.json" (builtins.toJSON (targetNames configFlake));
    in
    pkgs.writeShellScriptBin "lollypops" ''
      PATH=''${PATH:+$PATH:}${lib.makeBinPath [ tools.openssh tools.nix tools.pass ]}
      export PATH
      export LOLLYPOPS_FLAKE=${lib.escapeShellArg (flakeRef configFlake)}
      export LOLLYPOPS_FLAKE_HOSTS=${names}
      exec ${lib.getExe' runner "lollypops"} "$@"
    '';

  mkApp = configFlake: {
    type = "app";
    program = lib.getExe (wrapperFor configFlake);
    meta.description = "Deploy the flake's NixOS hosts with lollypops";
  };
in
{
  inherit
    mkApp
    wrapperFor
    flakeRef
    tools
    ;

  # `nix run github:lollypops/lollypops` runs the runner with no hosts; the
  # same value, applied to `{ configFlake = self; }`, is the user's app.
  default = mkApp { nixosConfigurations = { }; } // {
    __functor = _: { configFlake, ... }: mkApp configFlake;
  };
}
