package taskrun

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// goTaskFlag is one flag declaration of the task CLI.
type goTaskFlag struct{ name, short, kind string }

// goTaskFlags reads the flag declarations of the pinned go-task's CLI from
// its source (internal/flags/flags.go, which cannot be imported).
func goTaskFlags(t *testing.T) []goTaskFlag {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/go-task/task/v3").Output()
	dir := strings.TrimSpace(string(out))
	src := filepath.Join(dir, "internal", "flags", "flags.go")
	if _, statErr := os.Stat(src); err != nil || dir == "" || statErr != nil {
		t.Skip("flag parity: go-task's source is not in the module cache here (e.g. a Nix build sandbox)")
	}
	f, err := parser.ParseFile(token.NewFileSet(), src, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{"Bool": "bool", "String": "string", "Int": "int", "Duration": "duration", "StringSlice": "stringSlice"}
	var flags []goTaskFlag
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "pflag" || !strings.HasSuffix(strings.TrimSuffix(sel.Sel.Name, "P"), "Var") {
			return true
		}
		base := strings.TrimSuffix(strings.TrimSuffix(sel.Sel.Name, "P"), "Var")
		fl := goTaskFlag{kind: kinds[base]}
		fl.name, _ = strconv.Unquote(call.Args[1].(*ast.BasicLit).Value)
		if strings.HasSuffix(sel.Sel.Name, "P") {
			fl.short, _ = strconv.Unquote(call.Args[2].(*ast.BasicLit).Value)
		}
		flags = append(flags, fl)
		return true
	})
	if len(flags) < 40 {
		t.Fatalf("found only %d flags in %s: has the file's shape changed?", len(flags), src)
	}
	return flags
}

func TestFlagParity(t *testing.T) {
	want := goTaskFlags(t)
	var f Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.AddFlags(fs, t.TempDir())
	seen := map[string]bool{}
	for _, w := range want {
		seen[w.name] = true
		got := fs.Lookup(w.name)
		if got == nil {
			// --force and --force-all depend on the GentleForce experiment;
			// --force-all only exists when it is enabled.
			if w.name == "force-all" {
				continue
			}
			t.Errorf("go-task flag --%s is missing", w.name)
			continue
		}
		if got.Shorthand != w.short {
			t.Errorf("--%s: shorthand %q, go-task has %q", w.name, got.Shorthand, w.short)
		}
		if got.Value.Type() != w.kind {
			t.Errorf("--%s: type %s, go-task has %s", w.name, got.Value.Type(), w.kind)
		}
	}
	fs.VisitAll(func(fl *pflag.Flag) {
		if !seen[fl.Name] {
			t.Errorf("--%s is not a flag of go-task", fl.Name)
		}
	})
}

func TestFlagDefaultsFromEnvironment(t *testing.T) {
	t.Setenv("TASK_VERBOSE", "true")
	t.Setenv("TASK_CONCURRENCY", "7")
	t.Setenv("TASK_OUTPUT", "group")
	var f Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.AddFlags(fs, t.TempDir())
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if !f.Verbose || f.Concurrency != 7 || f.Output != "group" {
		t.Errorf("defaults: verbose %v concurrency %d output %q", f.Verbose, f.Concurrency, f.Output)
	}
	if err := fs.Parse([]string{"--concurrency=2"}); err != nil || f.Concurrency != 2 {
		t.Errorf("a flag must win over TASK_CONCURRENCY: %d %v", f.Concurrency, err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // substring of the error, "" for none
	}{
		{nil, ""},
		{[]string{"-t", "x.yml"}, "--taskfile cannot be used"},
		{[]string{"--init"}, "--init cannot be used"},
		{[]string{"-g"}, "--global cannot be used"},
		{[]string{"-w"}, "--watch cannot be used"},
		{[]string{"-l", "-a"}, "--list and --list-all"},
		{[]string{"-j"}, "--json only applies"},
		{[]string{"-a", "-j", "--nested"}, ""},
		{[]string{"--output-group-begin", "x"}, "need --output=group"},
		{[]string{"--sort", "random"}, `--sort "random"`},
		{[]string{"--sort", "alphanumeric"}, ""},
		{[]string{"--download"}, "--download concerns remote Taskfiles"},
		{[]string{"--offline"}, "--offline concerns remote Taskfiles"},
		{[]string{"--trusted-hosts", "x"}, "--trusted-hosts concerns remote Taskfiles"},
		{[]string{"--timeout", "3s"}, "--timeout concerns remote Taskfiles"},
		{[]string{"--cert", "c"}, "--cert concerns remote Taskfiles"},
	} {
		var f Flags
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		f.AddFlags(fs, t.TempDir())
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		err := f.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		}
	}
}

// --help lists what works here: not the flags of remote Taskfiles, nor
// those lollypops refuses.
func TestHelpListsWhatWorks(t *testing.T) {
	var f Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.AddFlags(fs, t.TempDir())
	help := fs.FlagUsages()
	for _, name := range append(RemoteFlags, "init", "global", "taskfile", "watch", "interval") {
		if strings.Contains(help, "--"+name+" ") || strings.Contains(help, "--"+name+"\n") {
			t.Errorf("--help lists --%s", name)
		}
	}
	for _, name := range []string{"--list-all", "--parallel", "--dry", "--verbose", "--concurrency", "--output", "--failfast"} {
		if !strings.Contains(help, name) {
			t.Errorf("--help lacks %s", name)
		}
	}
}

// --dry's command lines carry a real run's [host:step] prefix; colour and
// other lines are kept; split writes are joined.
func TestDryWriter(t *testing.T) {
	var b strings.Builder
	d := &dryWriter{w: &b}
	for _, p := range []string{"task: [h1:rebuild] on h1: nixos-", "rebuild\n\x1b[32mtask: [h2:check-vars] # check\x1b[0m\n",
		"task: \"h1\" started\n", "  task: [x] indented\n", "task: [h3:x] unfinished"} {
		d.Write([]byte(p))
	}
	d.flush()
	want := "[h1:rebuild] on h1: nixos-rebuild\n\x1b[32m[h2:check-vars] # check\x1b[0m\n" +
		"task: \"h1\" started\n  task: [x] indented\n[h3:x] unfinished"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}
