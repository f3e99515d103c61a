package main

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/config"
)

// --build-host replaces the option's host and user, keeps its ssh options,
// and its pinned key only for the same host.
func TestBuildHostFlag(t *testing.T) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	opt := func() *config.BuildHost {
		return &config.BuildHost{Host: "builder", User: ptr("nix"), Opts: []string{"-J", "jump"}, HostKey: &key, HostKeyPolicy: config.HostKeyPinned}
	}
	for _, c := range []struct {
		flag   string
		option *config.BuildHost
		policy string // the target's
		want   *config.BuildHost
	}{
		{"builder:2222", opt(), config.HostKeyStrict,
			&config.BuildHost{Host: "builder", User: ptr("nix"), Opts: []string{"-p", "2222", "-J", "jump"}, HostKey: &key, HostKeyPolicy: config.HostKeyPinned}},
		{"root@other", opt(), config.HostKeyAcceptNew,
			&config.BuildHost{Host: "other", User: ptr("root"), Opts: []string{"-J", "jump"}, HostKeyPolicy: config.HostKeyStrict}},
		{"[fd00::1]:22", nil, config.HostKeyAcceptNew,
			&config.BuildHost{Host: "fd00::1", Opts: []string{"-p", "22"}, HostKeyPolicy: config.HostKeyAcceptNew}},
		{"b", nil, config.HostKeyPinned, &config.BuildHost{Host: "b", Opts: []string{}, HostKeyPolicy: config.HostKeyStrict}},
		{"", opt(), config.HostKeyStrict, nil},
	} {
		var o overrides
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Set("build-host", c.flag); err != nil {
			t.Fatal(err)
		}
		b, err := o.buildHost()
		if err != nil {
			t.Fatalf("%q: %v", c.flag, err)
		}
		d := &config.Deployment{BuildHost: c.option, SSH: config.SSH{HostKeyPolicy: c.policy}}
		got := b.over(d)
		if (got == nil) != (c.want == nil) || got != nil && (got.Host != c.want.Host || !slices.Equal(got.Opts, c.want.Opts) ||
			got.HostKeyPolicy != c.want.HostKeyPolicy || (got.HostKey == nil) != (c.want.HostKey == nil) ||
			(got.User == nil) != (c.want.User == nil) || got.User != nil && *got.User != *c.want.User) {
			t.Errorf("%q over %+v: got %+v, want %+v", c.flag, c.option, got, c.want)
		}
	}
	for _, bad := range []string{"@b", "b:", "[::1", "[::1]x", "b:0", "b:022", ":22"} {
		var o overrides
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o.AddFlags(fs)
		fs.Set("build-host", bad)
		if _, err := o.buildHost(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func ptr[T any](v T) *T { return &v }
