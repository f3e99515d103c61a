package steps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/activation"
	"github.com/lollypops/lollypops/go/internal/config"
)

// A flake below its source's root (?dir=) is rebuilt from the GC-rooted
// source, with its directory as the flake reference's dir: the host's
// link points at the source, which is the store path nix copy sends.
func TestFlakeInADirectory(t *testing.T) {
	for _, c := range []struct{ flake, root, dir, ref string }{
		{"/nix/store/abc-source", "/nix/store/abc-source", "", "path:/nix/store/abc-source"},
		{"/nix/store/abc-source/deploy/fleet", "/nix/store/abc-source", "deploy/fleet", "path:/nix/store/abc-source?dir=deploy/fleet"},
	} {
		h := &config.Host{Flake: c.flake}
		root, dir := h.FlakeSource()
		if root != c.root || dir != c.dir || config.FlakeRef(root, dir) != c.ref {
			t.Errorf("%s: source %q, dir %q, ref %q; want %q, %q, %q", c.flake, root, dir, config.FlakeRef(root, dir), c.root, c.dir, c.ref)
		}
	}

	// The host-side scripts, run here with stand-ins for nixos-rebuild and
	// nix that print their arguments, and a link to a real store path.
	store, err := filepath.Glob("/nix/store/*-source")
	if err != nil || len(store) == 0 {
		t.Skip("no store path to link to here")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	// nix also makes its --out-link, which the build script reads.
	printArgs := "#!/bin/sh\nprintf '%s\\n' \"$@\"\nprev=\nfor a; do [ \"$prev\" = --out-link ] && ln -s " + store[0] + " \"$a\"; prev=$a; done\nexit 0\n"
	for _, name := range []string{"nixos-rebuild", "nix"} {
		os.WriteFile(filepath.Join(bin, name), []byte(printArgs), 0o755)
	}
	link := filepath.Join(dir, "flake")
	if err := os.Symlink(store[0], link); err != nil {
		t.Fatal(err)
	}
	run := func(argv []string) string {
		t.Helper()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return string(out)
	}
	for _, d := range []string{"", "deploy/fleet"} {
		want := config.FlakeRef(store[0], d)
		argv := rebuildArgv(rebuildScript, dir, "switch", "web-1", d)
		if got := run(argv); !strings.Contains(got, "--flake\n"+want+"#web-1\n") {
			t.Errorf("rebuild with dir %q ran nixos-rebuild %q, want --flake %s#web-1", d, got, want)
		}
		state := t.TempDir()
		build := activation.BuildArgv(link, "web-1", "x", d)
		build[len(build)-2] = state // the state directory, here
		if got := run(build); !strings.Contains(got, want+"#nixosConfigurations.\"web-1\".config.system.build.toplevel\n") {
			t.Errorf("build with dir %q ran nix %q, want %s#…", d, got, want)
		}
	}
}
