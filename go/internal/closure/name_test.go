package closure

import (
	"slices"
	"testing"
)

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		in                    string
		name, version, output string
	}{
		// builtins.parseDrvName's own examples.
		{"nix-0.12pre12876", "nix", "0.12pre12876", ""},
		{"apache-httpd-2.0.48", "apache-httpd", "2.0.48", ""},
		{"ripgrep-1.2", "ripgrep", "1.2", ""},
		{"rip-grep-1.2", "rip-grep", "1.2", ""},
		{"7zip_archiver-0.2", "7zip_archiver", "0.2", ""},
		{"gcc-1-2", "gcc", "1-2", ""},
		{"bash--1-2", "bash", "-1-2", ""},
		{"xvidtune-?1-2", "xvidtune", "?1-2", ""},
		// NixOS's typical names.
		{"linux-6.6.30", "linux", "6.6.30", ""},
		{"linux-6.6.30-modules", "linux", "6.6.30", "modules"},
		{"linux-6.6.30-modules-shrunk", "linux", "6.6.30-modules", "shrunk"},
		{"initrd-linux-6.6.30", "initrd-linux", "6.6.30", ""},
		{"nixos-system-host1-24.05.20240601.abcdef", "nixos-system-host1", "24.05.20240601.abcdef", ""},
		{"hello-2.12.1", "hello", "2.12.1", ""},
		{"python3.11-requests-2.31.0", "python3.11-requests", "2.31.0", ""},
		{"python3.11-requests-2.31.0-dist", "python3.11-requests", "2.31.0", "dist"},
		{"unit-sshd.service", "unit-sshd.service", "", ""},
		{"unit-getty-.service", "unit-getty", ".service", ""},
		{"etc", "etc", "", ""},
		{"etc-hostname", "etc", "", "hostname"},
		{"X-Restart-Triggers-sshd", "X-Restart-Triggers", "", "sshd"},
		{"X-Restart-Triggers-systemd-journald", "X-Restart-Triggers-systemd", "", "journald"},
		{"source", "source", "", ""},
		{"hello-2.12.1.drv", "hello", "2.12.1.drv", ""},
		// Outputs.
		{"hello-2.12.1-man", "hello", "2.12.1", "man"},
		{"openssl-3.0.13-dev", "openssl", "3.0.13", "dev"},
		{"openssl-3.0.13-bin", "openssl", "3.0.13", "bin"},
		{"gcc-13.2.0-lib", "gcc", "13.2.0", "lib"},
		{"glibc-2.39-52-lib32", "glibc", "2.39-52", "lib32"},
		{"glibc-2.39-52-lib64", "glibc", "2.39-52", "lib64"},
		{"nix-2.18.2-doc", "nix", "2.18.2", "doc"},
		// Nix cannot tell "-unstable" from an output either.
		{"foo-unstable", "foo", "", "unstable"},
		{"foo-unstable-2024-01-01", "foo-unstable", "2024-01-01", ""},
		// Edges: an output with no name, a last dash, a non-ASCII letter.
		{"-man", "", "", "man"},
		{"a-", "a-", "", ""},
		{"a-Ä", "a", "Ä", ""},
		{"", "", "", ""},
	} {
		got := ParseName(c.in)
		want := Name{Name: c.name, Version: c.version, Output: c.output}
		if got != want {
			t.Errorf("ParseName(%q) = %#v, want %#v", c.in, got, want)
		}
	}
}

func TestParsePath(t *testing.T) {
	n, err := ParsePath("/nix/store/0c3qmh0gxqgx1cy5y8kfz6lr4wb53l26-linux-6.6.30-modules")
	if err != nil || n != (Name{"linux", "6.6.30", "modules"}) {
		t.Errorf("got %+v, %v", n, err)
	}
	for _, bad := range []string{"", "/nix/store/short-hello", "/tmp/0c3qmh0gxqgx1cy5y8kfz6lr4wb53l26-hello",
		"/nix/store/0c3qmh0gxqgx1cy5y8kfz6lr4wb53l26-hel lo", "/nix/store/0c3qmh0gxqgx1cy5y8kfz6lr4wb53l2e-hello"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q): no error", bad)
		}
	}
}

func TestStorePathOf(t *testing.T) {
	for in, want := range map[string]string{
		"/nix/store/0c3qmh0gxqgx1cy5y8kfz6lr4wb53l26-linux-6.6.30/bzImage": "/nix/store/0c3qmh0gxqgx1cy5y8kfz6lr4wb53l26-linux-6.6.30",
		"/nix/store/0c3qmh0gxqgx1cy5y8kfz6lr4wb53l26-linux-6.6.30":         "/nix/store/0c3qmh0gxqgx1cy5y8kfz6lr4wb53l26-linux-6.6.30",
		"/boot/bzImage": "",
	} {
		if got := storePathOf(in); got != want {
			t.Errorf("storePathOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	// Sorted as nix-env sorts them.
	want := []string{"", "1.0pre1", "1.0", "1.0a", "1.0.1", "1.2", "1.10", "2.3a", "2.3.1", "6.6.9", "6.6.30", "99999999999999999999"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, compareVersions)
	if !slices.Equal(got, want) {
		t.Errorf("sorted %q, want %q", got, want)
	}
	if compareVersions("1.0", "1-0") == 0 {
		t.Error("1.0 and 1-0 compare equal: the order is not total")
	}
}
