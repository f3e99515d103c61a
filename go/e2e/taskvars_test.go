//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

// plainHost is a host with the modules' defaults and no fake host behind
// it: for what runs on the deployer only (listing, --dry, extra tasks).
func plainHost(name string) *config.Host {
	return &config.Host{
		Flake: flake,
		Deployment: config.Deployment{
			ConfigDir: "/var/src/lollypops", DeployMethod: config.MethodCopy, Tags: []string{},
			SSH:          config.SSH{Host: name, User: ptr("root"), Command: "ssh", Opts: []string{}, HostKeyPolicy: config.HostKeyStrict},
			Sudo:         config.Sudo{Command: "sudo", Opts: []string{}},
			Rollback:     config.Rollback{ConfirmTimeout: 30},
			HealthChecks: map[string]config.HealthCheck{},
			Reboot:       config.Reboot{Timeout: 300},
		},
		Secrets:    config.Secrets{Files: []config.Secret{}},
		Tasks:      []string{config.TaskDeployFlake, config.TaskDeploySecrets, config.TaskRebuild},
		ExtraTasks: map[string]config.ExtraTask{},
	}
}

// An extra task uses a host's variables unquoted, as the original's
// examples do ("ls {{.REMOTE_CONFIG_DIR}}"). A value with a space and a
// ";" is still one word, and runs nothing; the raw value is in the
// environment ($LOLLYPOPS_REMOTE_CONFIG_DIR).
func TestExtraTaskVariablesAreWords(t *testing.T) {
	requireHosts(t)
	canary := filepath.Join(t.TempDir(), "canary")
	out := filepath.Join(t.TempDir(), "out")
	h := plainHost("host1")
	h.Deployment.ConfigDir = "/var/src/my dir;touch " + canary
	h.Deployment.SSH.Command = "ssh$(touch${IFS}" + canary + ")"
	h.ExtraTasks["show"] = config.ExtraTask{
		Cmds: []string{"printf '[%s]\\n' {{.REMOTE_CONFIG_DIR}} {{.REMOTE_COMMAND}} {{.HOSTNAME}} \"$LOLLYPOPS_REMOTE_CONFIG_DIR/flake\" > " + out},
		Deps: []string{}, Dir: ".",
	}
	res := newRunner(t, map[string]*config.Host{"host1": h}).run("host1:show")
	if _, err := os.Stat(canary); err == nil {
		t.Errorf("a host's value ran as a command:\n%s", res)
	}
	got, _ := os.ReadFile(out)
	want := "[/var/src/my dir;touch " + canary + "]\n[ssh$(touch${IFS}" + canary + ")]\n[host1]\n[/var/src/my dir;touch " + canary + "/flake]\n"
	if string(got) != want {
		t.Errorf("the task printed %q, want %q\n%s", got, want, res)
	}
}
