package steps

import (
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/rundir"
)

func homeHost(t *testing.T) *config.Host {
	t.Helper()
	inv, err := config.Load("../config/testdata/homes.json")
	if err != nil {
		t.Fatal(err)
	}
	return inv.Hosts["alice@birne"]
}

func TestHomeManifestInTheHome(t *testing.T) {
	if got := manifestPath(homeHost(t)); got != "/home/alice/.local/state/lollypops/secrets.manifest" {
		t.Errorf("manifest = %q", got)
	}
}

func TestHomeActions(t *testing.T) {
	h := homeHost(t)
	for action, ok := range map[string]bool{"switch": true, "build": true, "boot": false, "test": false, "dry-activate": false} {
		err := checkHomeAction(&Env{Host: h, Action: action})
		if (err == nil) != ok {
			t.Errorf("%s: %v", action, err)
		}
	}
}

// The dry run of a home's rebuild: built here, copied, activated as the
// user; nothing of nixos-rebuild or the host's system.
func TestDescribeHomeRebuild(t *testing.T) {
	h := homeHost(t)
	e := &Env{Host: h, Run: &rundir.Dir{Path: t.TempDir()}, Action: "switch"}
	lines, err := Describe(e, config.TaskRebuild)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"nix-store --realise " + h.Home.ActivationPackage,
		"nix copy --to ssh://alice@10.0.0.2 --substitute-on-destination '<the activation package>'",
		"on alice@birne: '<the activation package>/activate'",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "nixos-rebuild") || strings.Contains(text, "switch-to-configuration") {
		t.Errorf("a NixOS step in a home's rebuild:\n%s", text)
	}
	e.Action = "build"
	if lines, _ := Describe(e, config.TaskRebuild); len(lines) != 1 {
		t.Errorf("build copies or activates: %q", lines)
	}
}
