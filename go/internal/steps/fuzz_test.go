package steps

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"text/template"
	"unicode/utf8"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/flakelink"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/shellword"
	"github.com/lollypops/lollypops/go/internal/taskgen"
)

// splitPOSIX returns the words a POSIX shell makes of line, failing the
// test unless it is one simple command of literal words.
func splitPOSIX(t *testing.T, line string) []string {
	t.Helper()
	words, ok := shellword.Literal(line)
	if !ok {
		t.Fatalf("%q is not one simple command of literal words", line)
	}
	return words
}

// FuzzInventoryValues feeds hostile values into every free-text field of a
// host. Each inventory is either rejected when it loads, with an error
// naming the host and a field, or it is deployed literally: every remote
// command line is one simple command whose words are exactly the values,
// the Taskfile is valid JSON, and go-task's template engine gives the
// values back unchanged.
func FuzzInventoryValues(f *testing.F) {
	for _, s := range [][6]string{
		{"/run/keys/db", "root", "keys", "0440", "/var/src/lollypops", "-p2222"},
		{"/run/keys/it's $(id) `id` \"q\"", "nginx", "nginx", "0400", "/var/src/my dir", "ProxyCommand=nc %h %p"},
		{"/run/keys/{{.HOME}}", "{{.USER}}", "g", "0600", "/srv/{{x}}", "{{.CLI_ARGS}}"},
		{"/run/keys/a\nb", "root\n", "root", "0400\n", "/var/src\x00", "-o\nX"},
		{"/run/keys/../../etc/shadow", "-r", "--", "9999", "relative", "-oProxyCommand=touch /tmp/x"},
		{"/run/keys/-n", "$(id)", "`id`", "u+r", "/", ""},
		{"/run/keys/é ü \u00a0 \u202e", "r\u00f6ot", "gr\u200boup", "０４００", "/var/src/\u2028", "\x1b[31m"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	f.Fuzz(func(t *testing.T, path, owner, group, mode, configDir, opt string) {
		for _, v := range []string{path, owner, group, mode, configDir, opt} {
			if !utf8.ValidString(v) {
				t.Skip() // JSON carries only UTF-8: no inventory can hold it
			}
		}
		doc := map[string]any{
			"version": 1,
			"hosts": map[string]any{"h": map[string]any{
				"flake": "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source",
				"deployment": map[string]any{
					"config-dir": configDir, "deploy-method": "copy", "local-evaluation": false, "build-host": nil,
					"ssh": map[string]any{"host": "h", "user": owner, "command": "ssh", "opts": []string{"-o", opt},
						"host-key-policy": "strict", "host-key": nil},
					"sudo": map[string]any{"enable": true, "command": "sudo", "opts": []string{group}},
				},
				"secrets": map[string]any{"remove-stale": false, "files": []any{map[string]any{
					"name": path, "home-manager-user": nil, "cmd": "pass x", "path": path,
					"owner": owner, "group": group, "mode": mode, "upload-at": "pre-activation", "allow-empty": false,
					"restartUnits": []string{}, "reloadUnits": []string{}}}},
				"tasks":      []string{"deploy-flake", "deploy-secrets", "rebuild"},
				"extraTasks": map[string]any{},
			}},
		}
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := config.Decode(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "inventory: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one inventory line: %q", err)
			}
			return
		}
		h := inv.Hosts["h"]
		env := &Env{Host: h, Run: &rundir.Dir{Path: "/tmp/run dir"}, Action: "switch"}
		c := env.ssh()

		// Remote command lines: exactly the values, as words.
		link, err := linkArgs(env, c)
		if err != nil {
			t.Fatal(err)
		}
		got := splitPOSIX(t, link[len(link)-1])
		want := append([]string{"sudo", group}, flakelink.LinkArgv(configDir, h.Flake)...)
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("link command %q\n splits into %q\n want %q", link[len(link)-1], got, want)
		}
		rb, err := rebuildArgs(env, c)
		if err != nil {
			t.Fatal(err)
		}
		if got := splitPOSIX(t, rb[len(rb)-1]); !slices.Equal(got[len(got)-3:], []string{configDir + "/flake", "switch", "h"}) {
			t.Fatalf("rebuild command %q splits into %q", rb[len(rb)-1], got)
		}
		// The ssh options stay one argument each.
		if args := c.RemoteArgs("x"); !containsSeq(args, []string{"-o", opt}) {
			t.Fatalf("ssh argv %q lost the option %q", args, opt)
		}
		script, err := c.WrapperScript("/usr/bin/ssh")
		if err != nil {
			t.Fatal(err)
		}
		line := script[strings.Index(script, "\nexec ")+1:]
		line = strings.TrimSuffix(line, " \"$@\"\n")
		if got := splitPOSIX(t, line); !containsSeq(got, []string{"-o", opt}) {
			t.Fatalf("wrapper %q splits into %q", line, got)
		}

		// The Taskfile: JSON, and values survive go-task's templates.
		tf, err := taskgen.Generate(plan.Build(inv), inv, taskgen.Options{StepBinary: "/bin/lollypops-step", Action: "switch"})
		if err != nil || !json.Valid(tf) {
			t.Fatalf("Taskfile: %v", err)
		}
		for _, v := range []string{configDir, path, opt} {
			tmpl, err := template.New("").Parse(taskgen.Literal(v))
			if err != nil {
				t.Fatalf("Literal(%q) does not parse as a template: %v", v, err)
			}
			var out strings.Builder
			if err := tmpl.Execute(&out, map[string]string{}); err != nil || out.String() != v {
				t.Fatalf("Literal(%q) renders as %q (%v)", v, out.String(), err)
			}
		}
		// No field can inject a record into the secrets stream.
		for _, v := range []string{path, owner, group, mode} {
			if strings.ContainsAny(v, "\n\r\x00") {
				t.Fatalf("a stream field with a line break was accepted: %q", v)
			}
		}
	})
}

func containsSeq(s, seq []string) bool {
	for i := 0; i+len(seq) <= len(s); i++ {
		match := true
		for j := range seq {
			if s[i+j] != seq[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
