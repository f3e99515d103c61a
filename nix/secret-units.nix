# The units of the secrets (`lollypops.secrets.files.<name>.unit`), NixOS
# only: for each, lollypops-secret-<name>.service, active while the
# secret's file exists, and lollypops-secret-<name>.path, which starts it
# when the file appears. See docs/secrets.md, "Services that wait for
# their secret".
#
# The service runs go/internal/secrets/wait.sh (the fake hosts of the
# tests run the same file): its ExecStartPre returns once the file exists,
# so the unit is "activating" until then and a service ordered after it
# waits; its ExecStart returns once the file is gone, and the unit is
# inactive again until the path unit sees the file. Only the file's
# existence is looked at, never its contents.
{ config, lib, ... }:
let
  cfg = config.lollypops.secrets;
  # A file of the flake's source, copied into the store.
  waitScript = ../go/internal/secrets/wait.sh;
  withUnits = lib.filterAttrs (_: s: s.unit) cfg.files;
  base = s: lib.removeSuffix ".service" s.unitName;
  # systemd expands specifiers (%) in a path unit's paths.
  specifierEscape = builtins.replaceStrings [ "%" ] [ "%%" ];
in
{
  _class = "nixos";
  key = "lollypops/secret-units";

  config = lib.mkIf (withUnits != { }) {
    # A secret written after the activation cannot be waited for by a
    # service that the activation starts: NixOS's switch waits for the
    # start of multi-user.target, which waits for the service, which waits
    # for the secret, which lollypops writes only once the switch is over.
    # NixOS's own warnings: evaluated with the system, not by `nix run`.
    warnings = lib.concatLists (
      lib.mapAttrsToList (
        n: s:
        let
          waiting = builtins.attrNames (
            lib.filterAttrs (
              _: svc: builtins.elem s.unitName (svc.after or [ ]) && lib.any (w: w != s.unitName) (svc.wantedBy or [ ])
            ) config.systemd.services
          );
        in
        lib.optional (s.upload-at == "post-activation" && waiting != [ ])
          "${lib.showOption [ "lollypops" "secrets" "files" n "upload-at" ]}: \"post-activation\", but its unit ${s.unitName} is in the `after` of ${lib.concatMapStringsSep ", " (w: "${w}.service") waiting}, which the activation starts: a switch that starts them waits for the secret, which is written only after the switch; use \"pre-activation\" (the default), or let the service be started by the secret's unit alone (wantedBy = [ ${builtins.toJSON s.unitName} ] instead of multi-user.target)."
      ) withUnits
    );

    systemd.services = lib.mapAttrs' (
      _: s:
      lib.nameValuePair (base s) {
        description = "lollypops secret ${s.name} (active while ${s.path} exists)";
        # Started by its path unit, or by the services that want it; never
        # by multi-user.target itself, whose start (at boot, in a switch)
        # would then wait for a secret that is not written yet.
        unitConfig.StartLimitIntervalSec = 0;
        serviceConfig = {
          Type = "simple";
          # Waiting for the file is its start: as long as it takes.
          TimeoutStartSec = "infinity";
          # The file is gone: the unit ends well and is inactive. Any other
          # end (the script killed, a failure) starts it again.
          Restart = "on-failure";
          RestartSec = "1s";
        };
        preStart = "exec /bin/sh ${waitScript} present ${lib.escapeShellArg s.path}";
        script = "exec /bin/sh ${waitScript} absent ${lib.escapeShellArg s.path}";
      }
    ) withUnits;

    systemd.paths = lib.mapAttrs' (
      _: s:
      lib.nameValuePair (base s) {
        description = "lollypops secret ${s.name} (starts its unit when ${s.path} appears)";
        # Starting a path unit never waits: it only starts watching.
        wantedBy = [ "multi-user.target" ];
        pathConfig.PathExists = specifierEscape s.path;
      }
    ) withUnits;
  };
}
