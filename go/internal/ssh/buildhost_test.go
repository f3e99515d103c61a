package ssh

import (
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/shelltest"
	"github.com/lollypops/lollypops/go/internal/config"
)

// Targets with the same build host share its connection; other settings
// get one of their own.
func TestBuildHostShared(t *testing.T) {
	target := func(name string, b *config.BuildHost) *config.Host {
		return &config.Host{Name: name, Deployment: config.Deployment{BuildHost: b,
			SSH: config.SSH{Host: name, Command: "ssh", HostKeyPolicy: config.HostKeyStrict}}}
	}
	prefix := func(s string) string { return s }
	b := &config.BuildHost{Host: "builder", Opts: []string{}, HostKeyPolicy: config.HostKeyStrict}
	one, two := BuildHost(target("a", b), prefix), BuildHost(target("b", b), prefix)
	if one.Prefix != two.Prefix || one.Host.Deployment.SSH.Host != "builder" {
		t.Errorf("one build host, two connections: %q %q", one.Prefix, two.Prefix)
	}
	other := *b
	other.Opts = []string{"-p", "2222"}
	if BuildHost(target("c", &other), prefix).Prefix == one.Prefix {
		t.Error("other ssh options share the connection")
	}
	if BuildHost(target("d", nil), prefix) != nil {
		t.Error("a client without a build host")
	}
}

// The relay wrapper puts each alias's host in its place, with that host's
// connection and options; it keeps nix's other arguments as they are, and
// refuses any other destination.
func TestRelayScript(t *testing.T) {
	a, b := client("-p", "2222", "-o", "SetEnv=X=\"it's $(touch /nonexistent/x)\""), client()
	b.Prefix, b.Host.Deployment.SSH.Host, b.Host.Deployment.SSH.User = "/run/lollypops/b", "b.example", nil
	script, err := RelayScript("/bin/echo", Relay{Alias: "lollypops-from", Client: a}, Relay{Alias: "lollypops-to", Client: b})
	if err != nil {
		t.Fatal(err)
	}
	shelltest.Each(t, func(t *testing.T, sh []string) {
		out, errOut, code := shelltest.Run(t, sh, nil, script, "ssh", "lollypops-from", "-x", "-a", "nix-store", "--serve", "--write")
		want := "-o ControlPath=/run/lollypops/h.sock -o ControlMaster=no -o StrictHostKeyChecking=yes -p 2222 -o SetEnv=X=\"it's $(touch /nonexistent/x)\" -l root h.example -x -a nix-store --serve --write\n"
		if code != 0 || out != want {
			t.Errorf("from: exit %d %q %s\nwant %q", code, out, errOut, want)
		}
		out, _, code = shelltest.Run(t, sh, nil, script, "ssh", "-o", "X=1 2", "lollypops-to", "a b")
		want = "-o ControlPath=/run/lollypops/b.sock -o ControlMaster=no -o StrictHostKeyChecking=yes -o X=1 2 b.example a b\n"
		if code != 0 || out != want {
			t.Errorf("to: exit %d %q, want %q", code, out, want)
		}
		out, errOut, code = shelltest.Run(t, sh, nil, script, "ssh", "elsewhere", "true")
		if code != 255 || out != "" || !strings.Contains(errOut, "no host elsewhere") {
			t.Errorf("elsewhere: exit %d %q %q", code, out, errOut)
		}
	})
}
