package ssh

import (
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

func client(opts ...string) *Client {
	user := "root"
	return &Client{Prefix: "/run/lollypops/h", Host: &config.Host{Name: "h", Deployment: config.Deployment{
		SSH: config.SSH{Host: "h.example", User: &user, Command: "ssh", Opts: opts, HostKeyPolicy: config.HostKeyStrict}}}}
}

// persist returns the ControlPersist value ssh takes: the first one.
func persist(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "ControlPersist="); ok && i > 0 && args[i-1] == "-o" {
			return v
		}
	}
	return ""
}

// The shared connection ends by itself when a killed runner cannot close
// it: a finite ControlPersist that the host's ssh.opts may change.
func TestMasterPersistsForAFiniteTime(t *testing.T) {
	if got := persist(client().MasterArgs()); got != ControlPersist || got == "yes" || got == "" {
		t.Errorf("ControlPersist = %q, want %q", got, ControlPersist)
	}
	if got := persist(client("-o", "ControlPersist=5").MasterArgs()); got != "5" {
		t.Errorf("with ssh.opts ControlPersist=5: ssh takes %q", got)
	}
	if got := persist(client().RemoteArgs("true")); got != "" {
		t.Errorf("sessions set ControlPersist=%q; only the master does", got)
	}
	if !slices.Contains(client().MasterArgs(), "ControlMaster=yes") {
		t.Error("the master is not a master")
	}
}
