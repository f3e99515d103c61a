# Option types shared by the NixOS and the home-manager module.
#
# Each one accepts exactly what the runner's validation
# (go/internal/config/validate.go) accepts, so that a value the modules let
# through is never rejected later by `nix run`, and the error names the
# option instead of an inventory field.
{ lib }:
let
  inherit (lib) mkOptionType;
  inherit (lib.options) mergeEqualOption;

  # A string type with a readable description; plain `mkOptionType` rather
  # than `str // { check }`, which newer module systems reject.
  strWith =
    name: description: check:
    mkOptionType {
      inherit name description;
      descriptionClass = "noun";
      check = x: builtins.isString x && check x;
      merge = mergeEqualOption;
    };

  matches = regex: s: builtins.match regex s != null;

  # No control characters: they break logs, listings and quoting.
  isText = s: !(matches ".*[[:cntrl:]].*" s);

  # Clean: no "." or ".." segment, no "//", no trailing "/".
  isCleanAbsolute =
    p:
    lib.hasPrefix "/" p
    && p != "/"
    && !lib.hasSuffix "/" p
    && !(matches ".*//.*" p)
    && !(matches ".*/[.]{1,2}(/.*)?" p)
    && isText p;

  stripTrailingSlashes = p: if lib.hasSuffix "/" p then stripTrailingSlashes (lib.removeSuffix "/" p) else p;
in
rec {
  # Secret locations and the like: a string, never a Nix path value, which
  # `builtins.toJSON` would copy into the world-readable store.
  absolutePath = strWith "lollypopsAbsolutePath" "clean absolute path outside the Nix store (a string)" (
    p: isCleanAbsolute p && !lib.hasPrefix "${builtins.storeDir}/" p
  );

  # A directory: a clean absolute path, or one with trailing slashes
  # ("/etc/nixos/", as configurations for the original lollypops wrote it),
  # which are dropped.
  directory = lib.types.coercedTo (strWith "lollypopsDirectoryWithSlash" "such a path ending in `/`" (
    p: p != "/" && lib.hasSuffix "/" p
  )) stripTrailingSlashes absolutePath;

  # The name of a specialisation or a profile: a directory name in the
  # system (specialisation/<name>) or in the profiles' directory.
  specialisation = strWith "lollypopsSpecialisation" "specialisation or profile name (letters, digits, `_`, `.`, `+`, `-`; not `.`, `+` or `-` first)" (
    s: matches "[A-Za-z0-9_][A-Za-z0-9_.+-]*" s && builtins.stringLength s <= 128
  );

  # The name of a program: one word that is not an option.
  program = strWith "lollypopsProgram" "program name or path (one word, not starting with `-`)" (
    matches "[^-[:space:]][^[:space:]]*"
  );

  userName = strWith "lollypopsUserName" "user name or numeric id" (
    s: matches "[A-Za-z_][A-Za-z0-9_.-]*[$]?|[0-9]+" s && builtins.stringLength s <= 64
  );

  groupName = strWith "lollypopsGroupName" "group name or numeric id" (
    s: matches "[A-Za-z_][A-Za-z0-9_.-]*[$]?|[0-9]+" s && builtins.stringLength s <= 64
  );

  mode = strWith "lollypopsMode" "octal file mode such as \"0400\"" (matches "[0-7]{3,4}");

  sshHost = strWith "lollypopsSshHost" "host name, ssh_config alias or IP address" (
    s: matches "[A-Za-z0-9_[][]A-Za-z0-9_.:%[-]*" s && builtins.stringLength s <= 253
  );

  hostKey = strWith "lollypopsHostKey" "OpenSSH public key line" (
    matches "(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh[.]com|sk-ecdsa-sha2-nistp256@openssh[.]com) [A-Za-z0-9+/]+={0,3}( [^[:cntrl:]]*)?"
  );

  # A shell command run on the deployer; never blank.
  command = strWith "lollypopsCommand" "shell command" (s: !(matches "[[:space:]]*" s));

  # One line of text: an argument, a description, a secret's name.
  textLine = strWith "lollypopsTextLine" "single-line string" isText;

  nonEmptyLine = strWith "lollypopsNonEmptyLine" "non-empty single-line string" (
    s: s != "" && isText s
  );

  # go-task templates `{{ }}` are not expanded in a task's directory.
  taskDir = strWith "lollypopsTaskDir" "directory (relative to where lollypops runs, or absolute)" (
    s: s != "" && isText s && !lib.hasInfix "{{" s
  );

  # A systemd unit to restart or reload: a full name with its type
  # ("nginx.service", "getty@tty1.service"), as systemd spells unit names.
  # It ends up in the argv of a root command on the host: it never starts
  # with `-` (or `.`), and a template needs its instance.
  unitName = strWith "lollypopsUnitName" "systemd unit name with its type, such as \"nginx.service\"" (
    s:
    matches "[A-Za-z0-9:_\\][A-Za-z0-9:_.@\\-]*[.](service|socket|target|path|timer|mount|automount|swap|slice|scope|device)" s
    && !lib.hasInfix "@." s
    && builtins.stringLength s <= 255
  );

  # A host's tag: selected on the command line as `@<tag>`.
  tag = strWith "lollypopsTag" "tag (letters, digits, `_`, `.` and `-`, not starting with `.` or `-`)" (
    s: matches "[A-Za-z0-9_][A-Za-z0-9_.-]*" s && builtins.stringLength s <= 64
  );

  # What a host task may be called: its listing shows `<host>:<task>`.
  isTaskName = matches "[A-Za-z0-9_][A-Za-z0-9_.-]*";
}
