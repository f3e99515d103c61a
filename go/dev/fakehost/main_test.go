package fakehost

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain gives the deployer's Nix a configuration of its own unless
// NIX_CONF_DIR is set (the Makefile sets it): this machine's nix.conf may
// be missing or name a build-users-group that does not exist. The hosts
// read their own /etc/nix/nix.conf.
func TestMain(m *testing.M) {
	if os.Getenv("NIX_CONF_DIR") == "" {
		dir, err := os.MkdirTemp("", "fakehost-nix-conf-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(dir, "nix.conf"), []byte(TestNixConf), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv("NIX_CONF_DIR", dir)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}
