package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/plan"
)

// writeOriginal writes the Taskfiles the original lollypops generates for
// inv (research/lollypops.md §2.3 and §4, the main-branch commands): a root
// Taskfile that includes one Taskfile per host, host and group tasks and
// "all"; per host, templated variables with LP_* overrides and the
// check-vars, deploy-flake, deploy-secrets and rebuild tasks, with three
// fresh ssh connections per secret. It returns the root Taskfile's path.
func writeOriginal(dir string, inv *config.Inventory) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	names := make([]string, 0, len(inv.Hosts))
	for n := range inv.Hosts {
		names = append(names, n)
	}
	plan.SortNatural(names)
	includes := map[string]any{}
	tasks := map[string]any{}
	for _, n := range names {
		h := inv.Hosts[n]
		file := filepath.Join(dir, n+".yml")
		data, err := json.Marshal(originalHost(h))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			return "", err
		}
		includes[n] = map[string]any{"taskfile": file}
		var cmds []any
		for _, t := range h.Tasks {
			cmds = append(cmds, map[string]any{"task": n + ":" + t})
		}
		tasks[n] = map[string]any{"desc": "Provision host: " + n, "cmds": cmds}
	}
	// Every host is in the group "default", which becomes a task (bug B3).
	var deps []any
	for _, n := range names {
		deps = append(deps, map[string]any{"task": n})
	}
	tasks["default"] = map[string]any{"desc": "Provision group: default", "deps": deps}
	tasks["all"] = map[string]any{"deps": names}
	root := map[string]any{"version": "3", "output": "prefixed", "silent": true, "includes": includes, "tasks": tasks}
	data, err := json.Marshal(root)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "Taskfile.yml")
	return path, os.WriteFile(path, data, 0o644)
}

func originalHost(h *config.Host) map[string]any {
	d := &h.Deployment
	user := "root"
	if d.SSH.User != nil {
		user = *d.SSH.User
	}
	opts := ""
	for i, o := range d.SSH.Opts {
		if i > 0 {
			opts += " "
		}
		opts += o
	}
	def := func(value, override string) string {
		return fmt.Sprintf(`{{default "%s" .%s}}`, value, override)
	}
	vars := map[string]any{
		"REMOTE_USER":         def(user, "LP_REMOTE_USER"),
		"REMOTE_HOST":         def(d.SSH.Host, "LP_REMOTE_HOST"),
		"REMOTE_COMMAND":      def(d.SSH.Command, "LP_REMOTE_COMMAND"),
		"REMOTE_SSH_OPTS":     def(opts, "LP_REMOTE_SSH_OPTS"),
		"REMOTE_SUDO_COMMAND": def(d.Sudo.Command, "LP_REMOTE_SUDO_COMMAND"),
		"REMOTE_SUDO_OPTS":    def("", "LP_REMOTE_SUDO_OPTS"),
		"REBUILD_ACTION":      `{{default "switch" .REBUILD_ACTION}}`,
		"REMOTE_CONFIG_DIR":   d.ConfigDir,
		"LOCAL_FLAKE_SOURCE":  h.Flake,
		"HOSTNAME":            h.Name,
	}
	ssh := "{{.REMOTE_COMMAND}} {{.REMOTE_SSH_OPTS}} {{.REMOTE_USER}}@{{.REMOTE_HOST}}"
	secrets := []any{`echo "Deploying secrets to: {{.HOSTNAME}}"`}
	for _, s := range h.Secrets.Files {
		secrets = append(secrets,
			fmt.Sprintf("echo 'Deploying %s to %s'", s.Name, s.Path),
			fmt.Sprintf(`%s 'umask 076; mkdir -p "$(dirname %s)"'`, ssh, s.Path),
			fmt.Sprintf("secret=\"$(%s)\"\ntest $? -eq 0 || (echo \"Failed to obtain secret\" && exit $?)\necho \"$secret\" | %s \"install -m 700 /dev/stdin %s\"",
				s.Cmd, ssh, s.Path),
			fmt.Sprintf(`%s "chown %s:%s %s"`, ssh, s.Owner, s.Group, s.Path),
		)
	}
	check := []any{"check-vars"}
	return map[string]any{
		"version": "3",
		"output":  "prefixed",
		"set":     []string{"e", "pipefail"},
		"vars":    vars,
		"tasks": map[string]any{
			"check-vars": map[string]any{"preconditions": []any{
				map[string]any{"sh": `[ ! -z "{{.HOSTNAME}}" ]`, "msg": "HOSTNAME not set"}}},
			"deploy-flake": map[string]any{"deps": check, "cmds": []any{
				`echo "Deploying flake to: {{.HOSTNAME}}"`,
				`NIX_SSHOPTS="{{.REMOTE_SSH_OPTS}}" nix copy --to ssh://{{.REMOTE_USER}}@{{.REMOTE_HOST}} --substitute-on-destination --option builders-use-substitutes true {{.LOCAL_FLAKE_SOURCE}}`,
				ssh + ` "mkdir -p {{.REMOTE_CONFIG_DIR}}"`,
				ssh + ` "ln -sfn {{.LOCAL_FLAKE_SOURCE}} {{.REMOTE_CONFIG_DIR}}/flake"`,
			}},
			"deploy-secrets": map[string]any{"deps": check, "cmds": secrets},
			"rebuild": map[string]any{"deps": check, "cmds": []any{
				ssh + ` 'nixos-rebuild {{.REBUILD_ACTION}} --flake "$(readlink -f {{.REMOTE_CONFIG_DIR}}/flake)#{{.HOSTNAME}}"'`,
			}},
		},
	}
}
