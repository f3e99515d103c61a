# docs/options.md, rendered from the modules with nixpkgs' lib alone (the
# option list nixosOptionsDoc renders, without its pandoc/Python toolchain),
# so the flake check and nix/update-options-doc.sh produce the same bytes.
{ lib }:
let
  inherit (lib) concatMapStrings mkOption types;

  root = toString ../. + "/";

  # Just the options the modules read from their surroundings.
  evalWith =
    class: module: stubs:
    (lib.evalModules {
      inherit class;
      modules = [
        module
        {
          options = stubs // {
            assertions = mkOption { type = types.listOf types.unspecified; };
            warnings = mkOption { type = types.listOf types.str; };
          };
        }
      ];
    }).options;

  nixos = evalWith "nixos" ./module.nix {
    networking.hostName = mkOption { type = types.str; };
    # The secrets' units (nix/secret-units.nix).
    systemd.services = mkOption { type = types.attrsOf types.raw; };
    systemd.paths = mkOption { type = types.attrsOf types.raw; };
  };
  homeManager = evalWith "homeManager" ./hm-module.nix {
    home.username = mkOption { type = types.str; };
    home.homeDirectory = mkOption { type = types.str; };
  };

  documented =
    options:
    builtins.filter (o: o.visible && !o.internal) (lib.optionAttrSetToDocList options.lollypops);

  code =
    value:
    let
      text = if value ? text then value.text else builtins.toJSON value;
      trimmed = lib.removeSuffix "\n" text;
    in
    if lib.hasInfix "\n" trimmed then
      "\n\n```nix\n${trimmed}\n```"
    else if value._type or "" == "literalMD" then
      " ${trimmed}"
    else
      " `${trimmed}`";

  field = label: o: attr: lib.optionalString (o ? ${attr}) "\n\n*${label}:*${code o.${attr}}";

  option = o: ''

    ### `${o.name}`

    ${lib.removeSuffix "\n" o.description}

    *Type:* ${o.type}${field "Default" o "default"}${field "Example" o "example"}

    *Declared in:* ${
      lib.concatMapStringsSep ", " (d: "`${lib.removePrefix root (toString d)}`") o.declarations
    }
  '';

  section = title: intro: options: "\n## ${title}\n\n${intro}${concatMapStrings option (documented options)}";
in
''
  <!-- Generated from nix/module.nix and nix/hm-module.nix by nix/options-doc.nix.
       Do not edit: run nix/update-options-doc.sh. -->
  # lollypops options
''
+ section "NixOS module" ''
  Import `lollypops.nixosModules.lollypops` in every host of `nixosConfigurations`
  that lollypops deploys.
'' nixos
+ section "Home Manager module" ''
  Import `lollypops.homeModules.default` in `home-manager.users.<user>` of such a
  host: lollypops deploys that user's secrets with the host's. Import it in a
  `homeConfigurations.<name>` of the flake, and lollypops deploys that home on
  its own, to any host with Nix: the `deployment`, `secrets.remove-stale`, `tasks`
  and `extraTasks` options below are for that case (a home inside a NixOS host
  follows the host's).
'' homeManager
