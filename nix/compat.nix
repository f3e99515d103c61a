# What configurations written for the original lollypops need: its
# `ssh.opts` and `sudo.opts` elements that hold several arguments.
#
# The original joined the elements of `ssh.opts` (and `sudo.opts`) with
# spaces into a command line that a shell split again, so `[ "-p 2522" ]`
# meant the two arguments `-p` and `2522`. lollypops passes each element as
# one argument. An element that starts with `-` and contains spaces is the
# original's form: it is split the way a shell splits plain words, with a
# warning. One that a shell would not just split at spaces (quotes, `$`,
# globs, ...), or whose words are not options each followed by at most one
# argument (`-oProxyCommand=nc %h %p`: one argument with spaces, or several?),
# is refused with an assertion naming the option.
{ lib }:
let
  inherit (lib) concatMapStringsSep showOption;

  matches = regex: s: builtins.match regex s != null;

  # A shell does more than split these at spaces.
  shellSyntax = ".*[][\"'\\\\$`;&|<>(){}*?!#~].*";

  words = s: builtins.filter (w: builtins.isString w && w != "") (builtins.split "[ \t]+" s);

  isOption = lib.hasPrefix "-";

  # Options each followed by at most one argument.
  optionShaped =
    ws:
    (builtins.foldl'
      (st: w: {
        ok = st.ok && (isOption w || st.afterOption);
        afterOption = isOption w;
      })
      {
        ok = true;
        afterOption = false;
      }
      ws
    ).ok;

  quoteAll = concatMapStringsSep " " builtins.toJSON;

  # One element of an opts option: its arguments, and what to tell the user.
  element =
    loc: e:
    let
      ws = words e;
      opt = showOption loc;
      hint = ''write one argument per element, e.g. [ "-p" "2522" ]'';
    in
    if !(isOption e && matches ".*[ \t].*" e) then
      {
        args = [ e ];
      }
    else if matches shellSyntax e then
      {
        args = [ e ];
        error = "${opt}: ${builtins.toJSON e} holds several arguments with shell syntax, which lollypops does not interpret (the original lollypops passed it through a shell); ${hint}.";
      }
    else if !optionShaped ws then
      {
        args = [ e ];
        error = "${opt}: ${builtins.toJSON e} is ambiguous: one argument with spaces, or the arguments ${quoteAll ws}? ${hint}, with an argument that contains spaces in an element of its own.";
      }
    else
      {
        args = ws;
        warning = "${opt}: ${builtins.toJSON e} is read as the arguments ${quoteAll ws}, as the original lollypops' shell split it; write one argument per element: ${
          builtins.toJSON e
        } becomes ${quoteAll ws}.";
      };
in
{
  # The arguments of an opts option's value (refused elements stay whole:
  # the assertions stop the deployment).
  splitOpts = loc: opts: builtins.concatMap (e: (element loc e).args) opts;

  # The warnings and the assertions of an opts option, from its definitions.
  optsChecks =
    loc: opts:
    let
      elements = map (element loc) opts;
    in
    {
      warnings = lib.concatMap (e: lib.optional (e ? warning) e.warning) elements;
      assertions = lib.concatMap (
        e:
        lib.optional (e ? error) {
          assertion = false;
          message = e.error;
        }
      ) elements;
    };
}
