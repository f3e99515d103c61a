package main

import (
	"github.com/lollypops/lollypops/go/internal/config"

	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"
)

// The completion scripts, run by the real shells against lollypops: a
// wrapper named lollypops on PATH runs this test binary as lollypops with
// --inventory first, as the flake's app wrapper (nix/apps.nix) does.

// TestHelperLollypops is lollypops itself when a wrapper runs the test
// binary with LOLLYPOPS_TEST_MAIN=1; otherwise it does nothing.
func TestHelperLollypops(t *testing.T) {
	if os.Getenv("LOLLYPOPS_TEST_MAIN") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	in := newInterrupter()
	code := run(in, args, os.Stdin, os.Stdout, os.Stderr)
	in.stop()
	os.Exit(code)
}

// completionEnv returns a PATH with a lollypops wrapper for the inventory
// inv first, and a directory with the files inv-a.json and inv-b.json and
// the directory inv-dir, for path completion.
func completionEnv(t *testing.T, inv string) (env []string, files string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	absInv, err := filepath.Abs(inv)
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	var q []string
	for _, s := range []string{self, "-test.run=^TestHelperLollypops$", "--", "--inventory", absInv} {
		quoted, err := syntax.Quote(s, syntax.LangPOSIX)
		if err != nil {
			t.Fatal(err)
		}
		q = append(q, quoted)
	}
	wrapper := "#!/bin/sh\nLOLLYPOPS_TEST_MAIN=1 exec " + strings.Join(q, " ") + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "lollypops"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	files = t.TempDir()
	for _, f := range []string{"inv-a.json", "inv-b.json"} {
		if err := os.WriteFile(filepath.Join(files, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(files, "inv-dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "LOLLYPOPS_INVENTORY=", "HOME="+t.TempDir())
	return env, files
}

// needShell returns the path of a shell the tests need. tests/deps.sh
// installs zsh and fish; under .ci/run (LOLLYPOPS_CI) a missing one fails
// the test, elsewhere it is skipped with its package name.
func needShell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("LOLLYPOPS_CI") != "" {
			t.Fatalf("%s is not installed, though tests/deps.sh installs it", name)
		}
		t.Skipf("%s is not installed (apt-get install %s; tests/deps.sh does)", name, name)
	}
	return p
}

func quote(t *testing.T, s string) string {
	t.Helper()
	q, err := syntax.Quote(s, syntax.LangBash)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// Bash: the script sourced in a real bash, its function called as
// readline calls it. COMP_WORDS are split as bash 5.2 splits them at the
// characters of COMP_WORDBREAKS (':', '=', '@' ...), and COMPREPLY holds what
// readline puts in place of the end of the word after the last of them.
func TestCompletionBash(t *testing.T) {
	bash := needShell(t, "bash")
	if out, err := exec.Command(bash, "-c", "type complete compgen compopt").CombinedOutput(); err != nil {
		// nixpkgs' non-interactive bash (a build sandbox) lacks them.
		t.Skipf("this bash has no programmable completion: %s", out)
	}
	env, files := completionEnv(t, full)
	other := writeFleet(t, map[string][]string{"zeder": nil})
	steps := slices.Clone(config.BuiltinTasks)
	cases := []struct {
		line  string   // COMP_LINE, up to the cursor unless point is set
		words []string // COMP_WORDS without the command
		point int      // COMP_POINT, when not at the end of line
		want  []string
	}{
		{"lollypops ", []string{""}, 0, []string{"ahorn", "birne", "all"}},
		{"lollypops a", []string{"a"}, 0, append(append([]string{"ahorn"}, prefixedSteps("ahorn", append(steps, "example"))...), "all")},
		{"lollypops ahorn:", []string{"ahorn", ":"}, 0, append(steps, "example")},
		{"lollypops ahorn:re", []string{"ahorn", ":", "re"}, 0, []string{"rebuild"}},
		{"lollypops birne", []string{"birne"}, len("lollypops bi"), append([]string{"birne"}, prefixedSteps("birne", steps)...)},
		{"lollypops -p ahorn bi", []string{"-p", "ahorn", "bi"}, 0, append([]string{"birne"}, prefixedSteps("birne", steps)...)},
		{"lollypops --on @", []string{"--on", "@"}, 0, []string{"@eu-west", "@web"}},
		{"lollypops --on @w", []string{"--on", "@", "w"}, 0, []string{"@web"}},
		{"lollypops --on=@w", []string{"--on", "=@", "w"}, 0, []string{"@web"}},
		{"lollypops --on birne,@e", []string{"--on", "birne,", "@", "e"}, 0, []string{"@eu-west"}},
		{"lollypops --exclude a", []string{"--exclude", "a"}, 0, []string{"ahorn"}},
		{"lollypops --on @web ", []string{"--on", "@", "web", ""}, 0, append(steps, "example")},
		{"lollypops --on @web dep", []string{"--on", "@", "web", "dep"}, 0, []string{"deploy-flake", "deploy-secrets"}},
		{"lollypops --lis", []string{"--lis"}, 0, []string{"--list", "--list-all"}},
		{"lollypops --output=g", []string{"--output", "=", "g"}, 0, []string{"group"}},
		{"lollypops -o ", []string{"-o", ""}, 0, []string{"interleaved", "group", "prefixed"}},
		{"lollypops --completion f", []string{"--completion", "f"}, 0, []string{"fish"}},
		{"lollypops REB", []string{"REB"}, 0, []string{"REBUILD_ACTION="}},
		{"lollypops all REBUILD_ACTION=b", []string{"all", "REBUILD_ACTION", "=", "b"}, 0, []string{"boot", "build"}},
		{"lollypops ahorn -- a", []string{"ahorn", "--", "a"}, 0, nil},
		{"lollypops --inventory " + other + " ", []string{"--inventory", other, ""}, 0, append([]string{"zeder"}, append(prefixedSteps("zeder", steps), "all")...)},
		{"lollypops --inventory " + files + "/inv-", []string{"--inventory", files + "/inv-"}, 0, []string{files + "/inv-a.json", files + "/inv-b.json", files + "/inv-dir"}},
		{"lollypops -d " + files + "/inv-", []string{"-d", files + "/inv-"}, 0, []string{files + "/inv-dir"}},
		{"lollypops --inventory=" + files + "/inv-b", []string{"--inventory", "=", files + "/inv-b"}, 0, []string{files + "/inv-b.json"}},
	}
	var snippets []string
	for _, c := range cases {
		point := c.point
		if point == 0 {
			point = len(c.line)
		}
		var words []string
		for _, w := range append([]string{"lollypops"}, c.words...) {
			words = append(words, quote(t, w))
		}
		snippets = append(snippets, "COMP_WORDS=("+strings.Join(words, " ")+")\n"+
			"COMP_CWORD="+itoa(len(c.words))+"\n"+
			"COMP_LINE="+quote(t, c.line)+"\n"+
			"COMP_POINT="+itoa(point)+"\n"+
			"_lollypops || echo _lollypops failed\n"+
			"printf '%s\\n' \"${COMPREPLY[@]}\"")
	}
	setup := "source <(lollypops --completion bash) || exit 1\n"
	_, outs := batch(t, env, []string{bash, "--norc", "--noprofile", "-c"}, setup, snippets)
	for i, c := range cases {
		// compgen lists files in directory order; the shell sorts them.
		got := slices.Clone(outs[i])
		if strings.Contains(c.line, "/inv-") {
			slices.Sort(got)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: COMPREPLY %q, want %q", c.line, outs[i], c.want)
		}
	}
}

// Fish: real completion queries, fish -c 'complete -C LINE'.
func TestCompletionFish(t *testing.T) {
	fish := needShell(t, "fish")
	env, files := completionEnv(t, full)
	script := filepath.Join(t.TempDir(), "lollypops.fish")
	cmd := exec.Command(lookPathIn(t, env, "lollypops"), "--completion", "fish")
	cmd.Env = env
	data, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(fish, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("fish -n: %v: %s", err, out)
	}
	steps := slices.Clone(config.BuiltinTasks)
	cases := []struct {
		line string
		want []string
	}{
		{"lollypops ", []string{"ahorn", "all", "birne"}},
		{"lollypops ahorn:re", []string{"ahorn:rebuild"}},
		{"lollypops --on @", []string{"@eu-west", "@web"}},
		{"lollypops --on=@w", []string{"--on=@web"}},
		{"lollypops --on birne,@e", []string{"birne,@eu-west"}},
		{"lollypops --on @web ", append(slices.Clone(steps), "example")},
		{"lollypops --output ", []string{"group", "interleaved", "prefixed"}},
		{"lollypops --lis", []string{"--list", "--list-all"}},
		{"lollypops all REBUILD_ACTION=b", []string{"REBUILD_ACTION=boot", "REBUILD_ACTION=build"}},
		{"lollypops ahorn -- ", nil},
		{"lollypops --inventory " + files + "/inv-", []string{files + "/inv-a.json", files + "/inv-b.json", files + "/inv-dir/"}},
		{"lollypops --dir " + files + "/inv-", []string{files + "/inv-dir/"}},
		{"lollypops --inventory=" + files + "/inv-a", []string{"--inventory=" + files + "/inv-a.json"}},
	}
	var snippets []string
	for _, c := range cases {
		snippets = append(snippets, "complete -C "+quote(t, c.line))
	}
	_, outs := batch(t, env, []string{fish, "--no-config", "-c"}, "source "+quote(t, script)+"\n", snippets)
	for i, c := range cases {
		var got []string
		for _, l := range outs[i] {
			value, _, _ := strings.Cut(l, "\t")
			got = append(got, value)
		}
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", c.line, got, want)
		}
	}
}

// Zsh: the script parses (zsh -n), and its function, called with words and
// CURRENT as the completion system sets them, hands _describe and _files
// the right candidates (they are stubbed: a real completion needs a
// terminal).
func TestCompletionZsh(t *testing.T) {
	zsh := needShell(t, "zsh")
	env, _ := completionEnv(t, full)
	cmd := exec.Command(lookPathIn(t, env, "lollypops"), "--completion", "zsh")
	cmd.Env = env
	data, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "_lollypops")
	if err := os.WriteFile(script, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v: %s", err, out)
	}
	stubs := `compdef() { print -r -- "compdef $*" }
_describe() { local -a c; c=("${(@P)4}"); print -rl -- "${c[@]}" "${@[5,-1]}" }
_files() { print -r -- "_files $*" }
compset() { print -r -- "compset $*" }
`
	cases := []struct {
		words []string // the last is the word to complete
		want  []string
	}{
		{[]string{""}, []string{"ahorn:deploy ahorn", "birne:deploy birne", "all:deploy every host in parallel"}},
		{[]string{"ahorn:re"}, []string{`ahorn\:rebuild:extra task rebuild`}},
		{[]string{"--on", "@"}, []string{"@eu-west:tag of ahorn", "@web:tag of ahorn"}},
		{[]string{"--on", "@web", "dep"}, []string{"deploy-flake:built-in step deploy-flake", "deploy-secrets:built-in step deploy-secrets"}},
		{[]string{"-o", "g"}, []string{"group:each task's output at its end"}},
		{[]string{"REB"}, []string{"REBUILD_ACTION=:how the hosts activate: switch, boot, test, dry-activate, build", "-S", ""}},
		{[]string{"--inventory", "x"}, []string{"compset -P --*=", "_files "}},
		{[]string{"-d", ""}, []string{"compset -P --*=", "_files -/"}},
		{[]string{"ahorn", "--", ""}, nil},
	}
	var snippets []string
	for _, c := range cases {
		var words []string
		for _, w := range append([]string{"lollypops"}, c.words...) {
			words = append(words, quote(t, w))
		}
		snippets = append(snippets, "words=("+strings.Join(words, " ")+")\nCURRENT="+itoa(len(words))+"\n_lollypops")
	}
	head, outs := batch(t, env, []string{zsh, "-f", "-c"}, stubs+"source "+quote(t, script)+"\n", snippets)
	if !slices.Equal(head, []string{"compdef _lollypops lollypops"}) {
		t.Errorf("sourcing the script: %q, want it to register _lollypops", head)
	}
	for i, c := range cases {
		if !slices.Equal(outs[i], c.want) {
			t.Errorf("%q: %q, want %q", c.words, outs[i], c.want)
		}
	}
}

// batch runs one shell (argv, then the script) for every case: setup, then
// each snippet after a marker line. It returns what setup printed and what
// each snippet printed, as lines.
func batch(t *testing.T, env, argv []string, setup string, snippets []string) (head []string, outs [][]string) {
	t.Helper()
	const marker = "--- next case ---"
	var b strings.Builder
	b.WriteString(setup)
	for _, s := range snippets {
		b.WriteString("echo '" + marker + "'\n" + s + "\n")
	}
	cmd := exec.Command(argv[0], append(argv[1:], b.String())...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", argv[0], err, stderrOf(err))
	}
	parts := strings.Split(string(out), marker+"\n")
	if len(parts) != len(snippets)+1 {
		t.Fatalf("%s: %d cases ran of %d:\n%s", argv[0], len(parts)-1, len(snippets), out)
	}
	for _, p := range parts[1:] {
		outs = append(outs, lines(p))
	}
	return lines(parts[0]), outs
}

func lookPathIn(t *testing.T, env []string, name string) string {
	t.Helper()
	for _, e := range slices.Backward(env) {
		if p, ok := strings.CutPrefix(e, "PATH="); ok {
			dir, _, _ := strings.Cut(p, string(os.PathListSeparator))
			return filepath.Join(dir, name)
		}
	}
	t.Fatal("no PATH")
	return ""
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func itoa(n int) string { return strconv.Itoa(n) }

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
