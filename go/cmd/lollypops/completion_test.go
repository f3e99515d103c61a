package main

import (
	"github.com/lollypops/lollypops/go/internal/config"

	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// completeCLI runs lollypops [--inventory inv] __complete words... in-process
// and returns the mode line and the candidates' values.
func completeCLI(t *testing.T, inv string, words ...string) (mode string, values []string) {
	t.Helper()
	var args []string
	if inv != "" {
		args = []string{"--inventory", inv}
	}
	code, out, errOut := runCLI(t, append(append(args, completeCmd), words...)...)
	if code != exitOK || errOut != "" {
		t.Fatalf("__complete %q: exit %d, stderr %q", words, code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines[1:] {
		value, _, ok := strings.Cut(l, "\t")
		if !ok {
			t.Fatalf("__complete %q: line %q has no tab", words, l)
		}
		values = append(values, value)
	}
	return lines[0], values
}

// writeFleet writes an inventory whose hosts (name: tags) are copies of
// the first host of testdata/minimal.json.
func writeFleet(t *testing.T, hosts map[string][]string) string {
	t.Helper()
	data, err := os.ReadFile(minimal)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version int                               `json:"version"`
		Hosts   map[string]map[string]interface{} `json:"hosts"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	proto := doc.Hosts["host1"]
	doc.Hosts = map[string]map[string]interface{}{}
	for name, tags := range hosts {
		var h map[string]interface{}
		raw, _ := json.Marshal(proto)
		json.Unmarshal(raw, &h)
		h["deployment"].(map[string]interface{})["tags"] = tags
		doc.Hosts[name] = h
	}
	out, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "inventory.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The candidates of each kind of word, from testdata/full.json: ahorn
// (tags web, eu-west; extra tasks example and rebuild, which replaces the
// built-in) and birne (no tag, no extra task).
func TestCompleteCandidates(t *testing.T) {
	steps := slices.Clone(config.BuiltinTasks)
	prefixed := func(p string, s []string) []string {
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = p + v
		}
		return out
	}
	for _, c := range []struct {
		words []string
		mode  string
		want  []string
	}{
		// Tasks: hosts and all; a host's steps once the word names it.
		{[]string{""}, "plain", []string{"ahorn", "birne", "all"}},
		{[]string{"b"}, "plain", append([]string{"birne"}, prefixed("birne:", steps)...)},
		{[]string{"a"}, "plain", append(append([]string{"ahorn"}, prefixed("ahorn:", append(steps, "example"))...), "all")},
		{[]string{"ahorn:"}, "plain", prefixed("ahorn:", append(steps, "example"))},
		{[]string{"ahorn:re"}, "plain", []string{"ahorn:rebuild"}},
		{[]string{"-p", "ahorn", "bi"}, "plain", append([]string{"birne"}, prefixed("birne:", steps)...)},
		{[]string{"zz"}, "plain", nil},
		// REBUILD_ACTION and its values; not once given.
		{[]string{"R"}, "plain", []string{"REBUILD_ACTION="}},
		{[]string{"REBUILD_ACTION="}, "plain", prefixed("REBUILD_ACTION=", []string{"switch", "boot", "test", "dry-activate", "build"})},
		{[]string{"REBUILD_ACTION=b"}, "plain", []string{"REBUILD_ACTION=boot", "REBUILD_ACTION=build"}},
		{[]string{"REBUILD_ACTION=boot", "R"}, "plain", nil},
		// --on and --exclude: tags and hosts, the last item of a list.
		{[]string{"--on", ""}, "plain", []string{"@eu-west", "@web", "ahorn", "birne"}},
		{[]string{"--on", "@"}, "plain", []string{"@eu-west", "@web"}},
		{[]string{"--on", "@w"}, "plain", []string{"@web"}},
		{[]string{"--on", "birne,"}, "plain", []string{"birne,@eu-west", "birne,@web", "birne,ahorn"}},
		{[]string{"--on", "@web,@eu-west,b"}, "plain", []string{"@web,@eu-west,birne"}},
		{[]string{"--on=@w"}, "plain", []string{"--on=@web"}},
		{[]string{"--exclude", "b"}, "plain", []string{"birne"}},
		// After --on: the selected hosts' steps, not tasks.
		{[]string{"--on", "@web", ""}, "plain", append(steps, "example")},
		{[]string{"--on", "birne", ""}, "plain", steps},
		{[]string{"--on", "b*", "deploy-"}, "plain", []string{"deploy-flake", "deploy-secrets"}},
		{[]string{"--exclude", "ahorn", "e"}, "plain", nil},
		{[]string{"--on", "nomatch", "e"}, "plain", []string{"example"}},
		{[]string{"--on", "'b*'", "e"}, "plain", nil},
		{[]string{"--on", `"a*"`, "e"}, "plain", []string{"example"}},
		{[]string{"--on=@web", "-v", "REBUILD_ACTION=t"}, "plain", []string{"REBUILD_ACTION=test"}},
		// Flags and their values.
		{[]string{"--lis"}, "plain", []string{"--list", "--list-all"}},
		{[]string{"--taskf"}, "plain", nil}, // hidden
		{[]string{"--on", "@web", "--exc"}, "plain", []string{"--exclude"}},
		{[]string{"--output", ""}, "plain", []string{"interleaved", "group", "prefixed"}},
		{[]string{"-o", "g"}, "plain", []string{"group"}},
		{[]string{"--output=p"}, "plain", []string{"--output=prefixed"}},
		{[]string{"--sort", ""}, "plain", []string{"default", "alphanumeric", "none"}},
		{[]string{"--completion", "z"}, "plain", []string{"zsh"}},
		{[]string{"-C", ""}, "plain", nil},
		{[]string{"-pC", "4", "bi"}, "plain", append([]string{"birne"}, prefixed("birne:", steps)...)},
		{[]string{"-C4", "bi"}, "plain", append([]string{"birne"}, prefixed("birne:", steps)...)},
		{[]string{"--inventory", ""}, "files", nil},
		{[]string{"--inventory=inv"}, "files", nil},
		{[]string{"-d", ""}, "dirs", nil},
		{[]string{"--temp-dir", "/t"}, "dirs", nil},
		// Nothing after "--": those are the tasks' own arguments.
		{[]string{"ahorn", "--", ""}, "plain", nil},
		{[]string{"ahorn", "--", "--l"}, "plain", nil},
	} {
		mode, got := completeCLI(t, full, c.words...)
		if mode != c.mode || !slices.Equal(got, c.want) {
			t.Errorf("%q: %s %q, want %s %q", c.words, mode, got, c.mode, c.want)
		}
	}
}

// In a large fleet, a word lists hosts first; a host's steps come once the
// word names that host.
func TestCompleteHostPrefix(t *testing.T) {
	inv := writeFleet(t, map[string][]string{"web-1": {"web"}, "web-10": {"web"}, "db-1": nil})
	steps := slices.Clone(config.BuiltinTasks)
	for _, c := range []struct {
		word string
		want []string
	}{
		{"", []string{"db-1", "web-1", "web-10", "all"}},
		{"web", []string{"web-1", "web-10"}},
		{"web-1", append(append([]string{"web-1"}, prefixedSteps("web-1", steps)...), "web-10")},
		{"web-10", append([]string{"web-10"}, prefixedSteps("web-10", steps)...)},
		{"web-10:d", prefixedSteps("web-10", []string{"deploy-flake", "deploy-secrets", "diff"})},
	} {
		if _, got := completeCLI(t, inv, c.word); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.word, got, c.want)
		}
	}
}

func prefixedSteps(host string, steps []string) []string {
	var out []string
	for _, s := range steps {
		out = append(out, host+":"+s)
	}
	return out
}

// The inventory at hand: an --inventory typed on the line wins over the
// app wrapper's, which wins over LOLLYPOPS_INVENTORY. Without a readable
// inventory, flags still complete, and nothing is printed on stderr.
func TestCompleteInventoryAtHand(t *testing.T) {
	other := writeFleet(t, map[string][]string{"zeder": nil})
	t.Setenv("LOLLYPOPS_INVENTORY", "")
	t.Setenv("HOME", filepath.Dir(other))
	for _, c := range []struct {
		env, wrapper string
		words        []string
		want         []string
	}{
		{"", full, []string{""}, []string{"ahorn", "birne", "all"}},
		{full, "", []string{""}, []string{"ahorn", "birne", "all"}},
		{other, full, []string{""}, []string{"ahorn", "birne", "all"}},
		{"", full, []string{"--inventory", other, ""}, []string{"zeder", "zeder:check-vars", "zeder:deploy-flake", "zeder:deploy-secrets", "zeder:rebuild", "zeder:diff", "all"}},
		{"", full, []string{"--inventory", "'" + other + "'", ""}, []string{"zeder", "zeder:check-vars", "zeder:deploy-flake", "zeder:deploy-secrets", "zeder:rebuild", "zeder:diff", "all"}},
		{"", full, []string{"--inventory", "~/inventory.json", "z"}, []string{"zeder", "zeder:check-vars", "zeder:deploy-flake", "zeder:deploy-secrets", "zeder:rebuild", "zeder:diff"}},
		{"", full, []string{"--inventory=" + other, "z"}, []string{"zeder", "zeder:check-vars", "zeder:deploy-flake", "zeder:deploy-secrets", "zeder:rebuild", "zeder:diff"}},
		{"", "", []string{""}, nil},
		{"", "", []string{"--on", ""}, nil},
		{"", "", []string{"--ver"}, []string{"--verbose", "--version"}},
		{"", "/nonexistent/inventory.json", []string{"--on", "@"}, nil},
		{"", "/nonexistent/inventory.json", []string{"--ver"}, []string{"--verbose", "--version"}},
		{"", "completion_test.go", []string{""}, nil}, // not JSON
		{"", "completion_test.go", []string{"--dry", "REBUILD_ACTION=d"}, []string{"REBUILD_ACTION=dry-activate"}},
	} {
		t.Setenv("LOLLYPOPS_INVENTORY", c.env)
		_, got := completeCLI(t, c.wrapper, c.words...)
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("env %q, wrapper %q, %q: %q, want %q", c.env, c.wrapper, c.words, got, c.want)
		}
	}
	// The wrapper's --inventory=PATH form, and no words at all.
	code, out, errOut := runCLI(t, "--inventory="+full, completeCmd)
	if code != 0 || errOut != "" || !strings.Contains(out, "\nahorn\t") {
		t.Errorf("--inventory=%s __complete: exit %d, %q, stderr %q", full, code, out, errOut)
	}
}

// The flags offered are exactly those --help lists.
func TestCompleteFlagsMatchHelp(t *testing.T) {
	code, help, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[\w-]+)`).FindAllStringSubmatch(help, -1) {
		want = append(want, m[1])
	}
	_, got := completeCLI(t, full, "-")
	slices.Sort(want)
	slices.Sort(got)
	if len(want) < 20 || !slices.Equal(got, want) {
		t.Errorf("completed flags %q\nwant those of --help %q", got, want)
	}
	for _, hidden := range []string{"--taskfile", "--init", "--insecure", "--watch"} {
		if slices.Contains(got, hidden) {
			t.Errorf("hidden flag %s completed", hidden)
		}
	}
}

// --completion prints a script that calls the callback; any other shell is
// a usage error naming the three.
func TestCompletionFlag(t *testing.T) {
	t.Setenv("LOLLYPOPS_INVENTORY", "")
	for _, sh := range shells {
		code, out, errOut := runCLI(t, "--completion", sh)
		if code != 0 || errOut != "" || !strings.Contains(out, "__complete") || !strings.Contains(out, "lollypops --completion "+sh) {
			t.Errorf("--completion %s: exit %d, stderr %q, script:\n%s", sh, code, errOut, out)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--completion", "tcsh"}, "lollypops: --completion \"tcsh\": no completion for that shell\nlollypops: hint: lollypops --completion takes bash, zsh, fish; load it with: source <(lollypops --completion bash)\n"},
		{[]string{"--completion="}, "lollypops: --completion \"\": no completion for that shell\n"},
		{[]string{"--completion", "bash", "host1"}, "lollypops: --completion takes no tasks or arguments\n"},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != exitUsage || out != "" || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q, want %q", c.args, code, out, errOut, c.want)
		}
	}
}

// A home-manager target completes like a host, with a home's steps.
func TestCompleteHome(t *testing.T) {
	const homes = "../../internal/config/testdata/homes.json"
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"alice@"}, []string{"alice@birne", "alice@birne:check-vars", "alice@birne:deploy-secrets", "alice@birne:rebuild", "alice@birne:hello"}},
		{[]string{"--on", "@"}, []string{"@desktop"}},
		{[]string{"--on", "alice@birne", ""}, []string{"check-vars", "deploy-secrets", "rebuild", "hello"}},
	} {
		if _, got := completeCLI(t, homes, c.words...); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.words, got, c.want)
		}
	}
}

// exec, plan and apply complete their own flags; plan its hosts, apply a
// plan file, -o and --report a file.
func TestCompleteSubcommands(t *testing.T) {
	for _, c := range []struct {
		words []string
		mode  string
		want  []string
	}{
		{[]string{"plan", ""}, "plain", []string{"ahorn", "birne", "all"}},
		{[]string{"plan", "ahorn", "b"}, "plain", []string{"birne"}},
		{[]string{"plan", "--on", "@"}, "plain", []string{"@eu-west", "@web"}},
		{[]string{"plan", "--on", "@web", ""}, "plain", nil},
		{[]string{"plan", "-o", ""}, "files", nil},
		{[]string{"plan", "--output=p"}, "files", nil},
		{[]string{"plan", "--o"}, "plain", []string{"--output", "--on"}},
		{[]string{"plan", "ahorn", "REBUILD_ACTION=b"}, "plain", []string{"REBUILD_ACTION=boot", "REBUILD_ACTION=build"}},
		{[]string{"apply", ""}, "files", nil},
		{[]string{"apply", "--c"}, "plain", []string{"--confirm", "--concurrency"}},
		{[]string{"apply", "--report", ""}, "files", nil},
		{[]string{"apply", "--inventory", ""}, "files", nil},
		{[]string{"exec", "--on", "b"}, "plain", []string{"birne"}},
		{[]string{"exec", "--ex"}, "plain", []string{"--exclude", "--exit-code"}},
		{[]string{"exec", "--on", "ahorn", "--", "up"}, "plain", nil},
	} {
		mode, got := completeCLI(t, full, c.words...)
		if mode != c.mode || !slices.Equal(got, c.want) {
			t.Errorf("%q: %s %q, want %s %q", c.words, mode, got, c.mode, c.want)
		}
	}
}
