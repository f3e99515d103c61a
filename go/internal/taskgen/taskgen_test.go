package taskgen

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func load(t *testing.T, name string) *config.Inventory {
	t.Helper()
	inv, err := config.Load("../config/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

var base = Options{
	StepBinary: "/nix/store/00000000000000000000000000000000-lollypops/bin/lollypops-step",
	Action:     "switch",
	Env:        map[string]string{"LOLLYPOPS_RUN_DIR": "/tmp/lollypops-run"},
	Record:     true,
	Guard:      &Precondition{Sh: `test ! -e "$LOLLYPOPS_RUN_DIR/interrupted"`, Msg: "not started: the run was interrupted"},
}

// golden compares got (indented) with testdata/name, or rewrites it.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("the Taskfile is not JSON: %v", err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s differs; run go test ./internal/taskgen -update and review the diff\n got:\n%s", name, pretty.String())
	}
}

func TestGolden(t *testing.T) {
	for _, c := range []struct {
		golden, inventory string
		calls             []string
		opts              func(*Options)
	}{
		{"minimal.all.json", "minimal.json", []string{"all"}, nil},
		{"full.all.json", "full.json", []string{"all"}, nil},
		{"full.birne-boot.json", "full.json", []string{"birne"}, func(o *Options) { o.Action = "boot" }},
		{"minimal.list.json", "minimal.json", []string{"all"}, func(o *Options) { o.ListOnly = true }},
		{"minimal.dry.json", "minimal.json", []string{"host1"}, func(o *Options) {
			o.Record, o.Guard = false, nil
			o.DryRun = func(t *plan.Task) ([]string, error) { return []string{"echo " + t.Name + " {{.X}}"}, nil }
		}},
	} {
		t.Run(c.golden, func(t *testing.T) {
			inv := load(t, c.inventory)
			sel, err := plan.Build(inv).Select(c.calls)
			if err != nil {
				t.Fatal(err)
			}
			opts := base
			opts.Env = map[string]string{"LOLLYPOPS_RUN_DIR": "/tmp/lollypops-run"}
			if c.opts != nil {
				c.opts(&opts)
			}
			got, err := Generate(sel, inv, opts)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Generate(sel, inv, opts)
			if !bytes.Equal(got, again) {
				t.Error("Generate is not deterministic")
			}
			golden(t, c.golden, got)
		})
	}
}

// Values from the inventory reach go-task's template engine and its shell
// only as literals.
func TestHostileValuesStayLiteral(t *testing.T) {
	inv := load(t, "full.json")
	h := inv.Hosts["ahorn"]
	h.Deployment.ConfigDir = "/srv/{{.HOME}}/$(id)/`id`"
	h.Deployment.SSH.Opts = []string{"-o", "ProxyCommand=nc {{.X}} %h; id", "it's"}
	out, err := Generate(plan.Build(inv), inv, base)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tasks map[string]struct {
			Vars map[string]string `json:"vars"`
			Env  map[string]string `json:"env"`
			Cmds []any             `json:"cmds"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(out, &tf); err != nil {
		t.Fatal(err)
	}
	vars := tf.Tasks["ahorn:example"].Vars
	if got, want := vars["REMOTE_CONFIG_DIR"], `'/srv/{{"{{"}}.HOME}}/$(id)/`+"`id`'"; got != want {
		t.Errorf("REMOTE_CONFIG_DIR = %q, want %q", got, want)
	}
	if got, want := tf.Tasks["ahorn:example"].Env["LOLLYPOPS_REMOTE_CONFIG_DIR"], `/srv/{{"{{"}}.HOME}}/$(id)/`+"`id`"; got != want {
		t.Errorf("$LOLLYPOPS_REMOTE_CONFIG_DIR = %q, want %q", got, want)
	}
	if got, want := vars["REMOTE_SSH_OPTS"], `-o 'ProxyCommand=nc {{"{{"}}.X}} %h; id' "it's"`; got != want {
		t.Errorf("REMOTE_SSH_OPTS = %q, want %q", got, want)
	}
	// The user's own commands (after the two recorders) are templates by
	// design and stay as written.
	if got := tf.Tasks["ahorn:example"].Cmds[2]; got != "echo 'this is a task'" {
		t.Errorf("user command = %q", got)
	}
	for name, task := range tf.Tasks {
		for _, c := range task.Cmds {
			if s, ok := c.(string); ok && strings.Contains(s, "lollypops-step") && strings.Contains(s, "$(id)") {
				t.Errorf("%s: inventory value in a step command: %s", name, s)
			}
		}
	}
}

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":    "plain",
		"a{{b}}c":  `a{{"{{"}}b}}c`,
		"{{{{":     `{{"{{"}}{{"{{"}}`,
		"}} and {": "}} and {",
	} {
		if got := Literal(in); got != want {
			t.Errorf("Literal(%q) = %q, want %q", in, got, want)
		}
	}
}
