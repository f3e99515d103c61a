package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

// A secret command that fails writes nothing on its host, fails the host
// before its rebuild, shows the command's stderr under the host's prefix,
// and leaves the other hosts alone.
func TestSecretCommandFailure(t *testing.T) {
	f := newFleet(t, hosts("bad", "good")...)
	bad, good := host(f, "bad"), host(f, "good")
	bad.Secrets.Files = []config.Secret{
		secret("a", "echo new-a", "/run/keys/a"),
		secret("b", "echo 'pass: no such entry' >&2; exit 3", "/run/keys/b"),
	}
	good.Secrets.Files = []config.Secret{secret("a", "echo good-a", "/run/keys/a")}
	sh(t, f.Host("bad"), "echo old-a > /run/keys/a")
	res := newRunner(t, map[string]*config.Host{"bad": bad, "good": good}).run("all")
	if res.code != 3 {
		t.Errorf("exit %d, want 3\n%s", res.code, res)
	}
	if got := sh(t, f.Host("bad"), "cat /run/keys/a; ls /run/keys"); got != "old-a\na\n" {
		t.Errorf("bad host's keys: %q", got)
	}
	if calls, _ := f.Host("bad").RebuildCalls(); len(calls) != 0 {
		t.Error("the host was rebuilt although a secret failed")
	}
	for _, want := range []string{
		"[bad:deploy-secrets] pass: no such entry",
		`[bad:deploy-secrets] lollypops: secret "b": command failed (exit status 3): echo 'pass: no such entry' >&2; exit 3`,
		"[bad:deploy-secrets] lollypops: hint: nothing was written on the host",
	} {
		if !strings.Contains(res.output(), want) {
			t.Errorf("output lacks %q\n%s", want, res)
		}
	}
	if got := sh(t, f.Host("good"), "cat /run/keys/a"); got != "good-a\n" {
		t.Errorf("good host: %q", got)
	}
	if !strings.HasPrefix(summaryLine(res, "good"), "good ok") || !strings.HasPrefix(summaryLine(res, "bad"), "bad failed") {
		t.Errorf("summary:\n%s", res.stderr)
	}
}

func TestSecretKilledOrEmpty(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	c := host(f, "host1")
	r := func(files ...config.Secret) result {
		c.Secrets.Files = files
		return newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	}
	res := r(secret("k", "kill -9 $$", "/run/keys/k"))
	if res.code != 3 || !strings.Contains(res.output(), `secret "k": command failed (killed by killed)`) {
		t.Errorf("killed command: %s", res)
	}
	res = r(secret("e", "true", "/run/keys/e"))
	if res.code != 3 || !strings.Contains(res.output(), `secret "e": the command printed nothing: true`) ||
		!strings.Contains(res.output(), "set allow-empty = true") {
		t.Errorf("empty output: %s", res)
	}
	sh(t, f.Host("host1"), "! test -e /run/keys/e")
	empty := secret("e", "true", "/run/keys/e")
	empty.AllowEmpty = true
	if res := r(empty); res.code != 0 {
		t.Fatalf("allowed empty: %s", res)
	}
	if got := sh(t, f.Host("host1"), "wc -c < /run/keys/e"); got != "0\n" {
		t.Errorf("empty secret: %q bytes", got)
	}
}

// Secrets whose owner activation creates: before activation they wait owned
// by root (pre-activation) or are not written yet (post-activation); after
// it, they get their owner. An owner still missing after activation is an
// error.
func TestUploadAtActivation(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	c := host(f, "host1")
	pre := secret("pre", "echo pre-value", "/run/keys/pre")
	pre.Owner, pre.Group, pre.Mode = "nginx", "nginx", "0440"
	post := secret("post", "echo post-value", "/var/lib/app/post")
	post.Owner, post.Group, post.UploadAt = "app", "app", config.PostActivation
	c.Secrets.Files = []config.Secret{pre, post}
	// The activation creates the users, and notes what it found.
	h.SetActivationHook(`useradd -r -U nginx; useradd -r -U app
ls /run/keys /var/lib/app > /run/fakehost/seen-at-activation 2>&1 || true`)
	r := newRunner(t, map[string]*config.Host{"host1": c})
	res := r.run("host1")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	seen, _ := os.ReadFile(filepath.Join(h.Dir, "ctl", "seen-at-activation"))
	if !strings.Contains(string(seen), "pre") || strings.Contains(string(seen), "post") {
		t.Errorf("at activation the host had: %q (want pre, not post)", seen)
	}
	got := sh(t, h, "stat -c '%a %U %G %n' /run/keys/pre /var/lib/app/post; cat /run/keys/pre /var/lib/app/post")
	want := "440 nginx nginx /run/keys/pre\n400 app app /var/lib/app/post\npre-value\npost-value\n"
	if got != want {
		t.Errorf("host:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(res.output(), "/run/keys/pre: user nginx does not exist yet; written as root:root 400 (no access for its group or others), and written again as nginx:nginx 0440 after the activation") ||
		!strings.Contains(summaryLine(res, "host1"), "1 after activation") {
		t.Errorf("output:\n%s", res)
	}

	// An owner that activation does not create either.
	h.SetActivationHook("")
	ghost := secret("ghost", "echo g", "/run/keys/ghost")
	ghost.Owner = "ghost"
	c.Secrets.Files = []config.Secret{ghost}
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1")
	if res.code != 3 || !strings.Contains(res.output(), "after the activation: writing the secrets on the host") ||
		!strings.Contains(res.output(), "/run/keys/ghost: user ghost does not exist") {
		t.Errorf("missing owner after activation: %s", res)
	}
	// Without an activation in the run, a missing owner fails at once.
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 3 || !strings.Contains(res.output(), "/run/keys/ghost: user ghost does not exist") {
		t.Errorf("missing owner without activation: %s", res)
	}
}

// Secrets deployed earlier and no longer configured are listed, and removed
// when remove-stale is set.
func TestStaleSecrets(t *testing.T) {
	f := newFleet(t, hosts("host1")...)
	h := f.Host("host1")
	c := host(f, "host1")
	c.Secrets.Files = []config.Secret{secret("a", "echo a", "/run/keys/a"), secret("b", "echo b", "/run/keys/b")}
	if res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	c.Secrets.Files = c.Secrets.Files[:1]
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 0 || !strings.Contains(res.output(), "stale secret /run/keys/b: no longer configured; set lollypops.secrets.remove-stale = true to remove it") {
		t.Errorf("stale listing: %s", res)
	}
	sh(t, h, "test -e /run/keys/b")
	c.Secrets.RemoveStale = true
	res = newRunner(t, map[string]*config.Host{"host1": c}).run("host1:deploy-secrets")
	if res.code != 0 || !strings.Contains(res.output(), "removed stale secret /run/keys/b") {
		t.Errorf("stale removal: %s", res)
	}
	if got := sh(t, h, "ls /run/keys"); got != "a\n" {
		t.Errorf("keys left: %q", got)
	}
}

// Values that shells, templates and ssh treat specially are deployed
// literally: paths, config-dir and ssh options with spaces, quotes, $(),
// backticks and leading dashes.
func TestHostileValuesDeployedLiterally(t *testing.T) {
	f := newFleet(t, fakehost.HostSpec{Name: "host1", Groups: []string{"we_ird-grp"}})
	c := host(f, "host1")
	canary := filepath.Join(t.TempDir(), "pwned")
	nasty := "/run/keys/it's $(touch " + canary + ") `touch " + canary + "` \"q\" {{.HOSTNAME}} -n"
	s := secret("it's {{.X}} $(id)", "printf %s 'val'\"'\"'ue'", nasty)
	s.Group = "we_ird-grp"
	c.Secrets.Files = []config.Secret{s, secret("dash", "echo d", "/run/keys/-rf")}
	c.Deployment.ConfigDir = "/var/src/my deploy's $(dir)"
	c.Deployment.SSH.Opts = append(c.Deployment.SSH.Opts, "-o", "ServerAliveInterval 20", "-o", `SetEnv=LOLLY="a b"`)
	res := newRunner(t, map[string]*config.Host{"host1": c}).run("host1")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	h := f.Host("host1")
	got, err := h.Exec(context.Background(), "cat", "--", nasty)
	if err != nil || string(got) != "val'ue" {
		t.Errorf("hostile path: %q %v", got, err)
	}
	if got := sh(t, h, "cat /run/keys/-rf"); got != "d\n" {
		t.Errorf("dash path: %q", got)
	}
	link, err := h.Exec(context.Background(), "readlink", "/var/src/my deploy's $(dir)/flake")
	if err != nil || strings.TrimSpace(string(link)) != flake {
		t.Errorf("config-dir with quotes: %q %v", link, err)
	}
	calls, _ := h.RebuildCalls()
	if len(calls) != 1 || calls[0].Args[2] != "path:"+flake+"#host1" || !calls[0].FlakeValid {
		t.Errorf("rebuild: %+v", calls)
	}
	if _, err := os.Stat(canary); !os.IsNotExist(err) {
		t.Error("a value was executed by a shell")
	}
}
