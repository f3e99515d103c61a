package fakehost

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The secrets' units (System.SecretWaiters): a service that waits for its
// secret starts once the file is there and saw it then; the unit is
// inactive once the file is gone; a power cut empties /run, and the
// service waits again.
func TestSecretUnits(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip("fakehost: " + err.Error())
	}
	ctx := context.Background()
	sys := System{SecretWaiters: []SecretWaiter{
		{Secret: "db-pass", Path: "/run/keys/db-pass", Service: "app"},
		{Secret: "other", Path: "/run/keys/sub/other"},
	}}
	f, err := New(ctx, t.TempDir(), []HostSpec{{Name: "waiter", System: sys}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h := f.Host("waiter")
	const unit, other = `lollypops-secret-db\x2dpass.service`, "lollypops-secret-other.service"
	run := func(script string) string {
		t.Helper()
		out, err := h.Exec(ctx, "bash", "-c", "PATH=/run/current-system/sw/bin:$PATH; "+script)
		if err != nil {
			t.Fatalf("%s: %v: %s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	state := func(u string) string { return run("systemctl is-active '" + u + "' || true") }
	// eventually polls for a state (no timing asserted).
	eventually := func(u, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for state(u) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s is %s, want %s", u, state(u), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Booted without the secrets: app waits, its secret's unit starts
	// (wanted by app), the other's path unit waits.
	eventually(unit, "activating")
	if got := state("app"); got != "inactive" {
		t.Errorf("app before its secret: %s", got)
	}
	if got := state(other); got != "inactive" {
		t.Errorf("%s: %s", other, got)
	}
	run("printf SECRET-VALUE >/run/keys/.db-pass.new && mv /run/keys/.db-pass.new /run/keys/db-pass")
	eventually("app", "active")
	if got := state(unit); got != "active" {
		t.Errorf("%s with its secret: %s", unit, got)
	}
	if got := run("cat /run/fakehost/units/app.service/saw"); got != "/run/keys/db-pass present, 12 bytes" {
		t.Errorf("app saw %q", got)
	}
	if got := run("journalctl -u app; journalctl -u '" + unit + "'"); strings.Contains(got, "SECRET-VALUE") || !strings.Contains(got, "started: /run/keys/db-pass present") {
		t.Errorf("logs: %q", got)
	}
	// A secret without a waiting service: active once there.
	run("mkdir -p /run/keys/sub && echo x >/run/keys/sub/other")
	eventually(other, "active")
	// Gone: inactive; app, which only wants it, goes on.
	run("rm /run/keys/db-pass")
	eventually(unit, "inactive")
	if got := state("app"); got != "active" {
		t.Errorf("app after its secret went: %s", got)
	}
	run("echo again >/run/keys/db-pass")
	eventually(unit, "active")

	// A power cut: /run is lost, app waits again.
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(unit, "activating")
	if got := state("app"); got != "inactive" {
		t.Errorf("app after the power cut: %s", got)
	}
	run("echo v2 >/run/keys/db-pass")
	eventually("app", "active")
	if got := run("cat /run/fakehost/units/app.service/saw"); got != "/run/keys/db-pass present, 3 bytes" {
		t.Errorf("app saw %q after the reboot", got)
	}

	// Switches: a system without the units stops them and their service.
	flake := addFlake(t, map[string]System{"waiter": sys, "plain": {},
		"late": {SecretWaiters: []SecretWaiter{{Secret: "late", Path: "/run/keys/late", Service: "worker"}}}})
	if out, err := nixCopy(f, "ssh://waiter", flake); err != nil {
		t.Fatalf("nix copy: %v: %s", err, out)
	}
	ref := func(name string) string { return "nixos-rebuild switch --flake path:" + flake + "#" + name }
	if out, code := sshRun(t, f, "waiter", ref("plain")); code != 0 {
		t.Fatalf("switch to plain: exit %d: %s", code, out)
	}
	for _, u := range []string{unit, other, "app.service"} {
		if got := state(u); got != "inactive" {
			t.Errorf("after a switch to a system without it, %s is %s", u, got)
		}
	}
	// A new service that waits for a secret that is not there: the switch
	// waits for it, as NixOS's start of multi-user.target does, until the
	// secret is written.
	done := make(chan string, 1)
	go func() {
		out, err := ssh(t, f, "waiter", ref("late"))
		done <- fmt.Sprintf("%v: %s", err, out)
	}()
	eventually(`lollypops-secret-late.service`, "activating")
	select {
	case got := <-done:
		t.Fatalf("the switch ended before the new service's secret was there: %s", got)
	case <-time.After(500 * time.Millisecond):
	}
	run("echo late >/run/keys/late")
	select {
	case got := <-done:
		if !strings.HasPrefix(got, "<nil>: ") {
			t.Errorf("switch to late: %s", got)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("the switch still waits after the secret was written")
	}
	if got := state("worker"); got != "active" {
		t.Errorf("worker after the switch: %s", got)
	}
}

// System.SecretWaiters reach system.nix as lines; what cannot be a unit or
// a path is refused.
func TestSecretWaitersArgs(t *testing.T) {
	got, err := System{SecretWaiters: []SecretWaiter{
		{Secret: "db-pass", Path: "/run/keys/db pass", Service: "app"},
		{Secret: "db-pass", Path: "/run/keys/db pass", Service: "worker.service"},
		{Secret: "a/b", Path: "/run/keys/a/b"},
	}}.args("h1")
	want := `secretUnits = "lollypops-secret-db\\x2dpass.service\t/run/keys/db pass\nlollypops-secret-a-b.service\t/run/keys/a/b\n"; ` +
		`secretWaiters = "app.service\tlollypops-secret-db\\x2dpass.service\nworker.service\tlollypops-secret-db\\x2dpass.service\n";`
	if err != nil || !strings.Contains(got, want) {
		t.Errorf("args: %s (%v), want %s", got, err, want)
	}
	for _, bad := range []SecretWaiter{
		{Secret: "clé", Path: "/run/keys/x"},
		{Secret: "x", Path: "run/keys/x"},
		{Secret: "x", Path: "/run/keys/x\ny"},
		{Secret: "x", Path: "/run/keys/x", Service: "a b"},
		{Secret: "x", Path: "/run/keys/x", Service: "sshd"},
	} {
		if _, err := (System{SecretWaiters: []SecretWaiter{bad}}).args("h1"); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
	if _, err := (System{SecretWaiters: []SecretWaiter{{Secret: "a", Path: "/a", Service: "app"}, {Secret: "b", Path: "/b", Service: "app"}}}).args("h1"); err == nil ||
		!strings.Contains(err.Error(), "app.service waits for more than one secret") {
		t.Errorf("a service waiting for two secrets: %v", err)
	}
}
