package e2e

import (
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

// Hosts picked by tag and glob deploy in parallel, the others are not
// touched; --list-all shows the tags.
func TestSelectByTagAndGlob(t *testing.T) {
	f := newFleet(t, hosts("host1", "host2", "host3")...)
	hs := map[string]*config.Host{}
	for _, h := range f.Hosts() {
		c := host(f, h.Name)
		c.Secrets.Files = []config.Secret{secret("k", "echo key-of-"+h.Name, "/run/keys/k")}
		if h.Name != "host3" {
			c.Deployment.Tags = []string{"web"}
		} else {
			c.Deployment.Tags = []string{"db"}
		}
		hs[h.Name] = c
	}
	r := newRunner(t, hs)
	res := r.run("--list-all")
	if res.code != 0 || !strings.Contains(res.stdout, "Tags:\n* @db:   host3\n* @web:  host1, host2\n") {
		t.Errorf("--list-all:\n%s", res)
	}
	res = r.run("--on", "@web", "deploy-secrets")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	for _, name := range []string{"host1", "host2"} {
		if got := sh(t, f.Host(name), "cat /run/keys/k"); got != "key-of-"+name+"\n" {
			t.Errorf("%s: %q", name, got)
		}
		if !strings.HasPrefix(summaryLine(res, name), name+" ok") {
			t.Errorf("summary of %s: %q\n%s", name, summaryLine(res, name), res)
		}
	}
	if n := authCount(t, f.Host("host3")); n != 0 {
		t.Errorf("host3 was contacted (%d logins)", n)
	}
	res = r.run("--on", "host[23]", "--exclude", "@db,host2")
	if res.code != 2 || !strings.Contains(res.stderr, "matches no host") {
		t.Errorf("empty selection: %s", res)
	}
	res = r.run("--on", "@wbe")
	if res.code != 2 || !strings.Contains(res.stderr, `did you mean "@web"?`) || !strings.Contains(res.stderr, "hosts: host1, host2, host3; tags: @db, @web") {
		t.Errorf("unknown tag: %s", res)
	}
}
