package steps

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/planfile"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/secrets"
)

// When the run applies a plan, deploy-secrets takes only the values the
// plan recorded, by their keyed checksum; without a plan, any.
func TestCheckPlanned(t *testing.T) {
	run := &rundir.Dir{Path: t.TempDir()}
	db := &config.Secret{Name: "db", Path: "/run/keys/db"}
	web := &config.Secret{Name: "web", Path: "/run/keys/web"}
	e := &Env{Host: &config.Host{Name: "web-1"}, Run: run}
	values := []secrets.Value{{Secret: db, Data: []byte("one")}, {Secret: web, Data: []byte("two")}}
	if err := e.checkPlanned(values); err != nil {
		t.Fatalf("no plan: %v", err)
	}
	salt, _ := planfile.NewSalt()
	sum := func(s *config.Secret, v string) string {
		c, err := planfile.Sum(salt, "web-1", s.Name, s.Path, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	h := &planfile.Host{System: "/nix/store/x", Secrets: []planfile.Secret{
		{Name: "db", Path: "/run/keys/db", Checksum: sum(db, "one")},
		{Name: "web", Path: "/run/keys/web", Checksum: sum(web, "two")},
	}}
	data, _ := json.Marshal(planfile.Applied{Salt: salt, Host: h})
	os.MkdirAll(filepath.Dir(planfile.ApplyFile(run.Path, "web-1")), 0o700)
	os.WriteFile(planfile.ApplyFile(run.Path, "web-1"), data, 0o600)
	if err := e.checkPlanned(values); err != nil {
		t.Errorf("the plan's values: %v", err)
	}
	for _, c := range []struct {
		values []secrets.Value
		want   string
	}{
		{[]secrets.Value{{Secret: db, Data: []byte("one")}, {Secret: web, Data: []byte("three")}}, `refused: secret "web" differs from the plan; nothing was written`},
		{[]secrets.Value{{Secret: &config.Secret{Name: "new", Path: "/run/keys/new"}, Data: []byte("x")}}, `refused: secret "new" is not in the plan`},
		{[]secrets.Value{{Secret: &config.Secret{Name: "db", Path: "/run/keys/moved"}, Data: []byte("one")}}, `refused: secret "db" is not in the plan`},
	} {
		err := e.checkPlanned(c.values)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
		if h, ok := err.(interface{ Hint() string }); !ok || !strings.Contains(h.Hint(), "lollypops plan again") {
			t.Errorf("%v: hint %v", err, h)
		}
	}
}

func TestUnitsOf(t *testing.T) {
	a := &config.Secret{RestartUnits: []string{"a.service", "b.service"}, ReloadUnits: []string{"c.service"}}
	b := &config.Secret{RestartUnits: []string{"b.service"}, ReloadUnits: []string{"a.service", "d.service", "c.service"}}
	restart, reload := unitsOf([]*config.Secret{a, b})
	if !slices.Equal(restart, []string{"a.service", "b.service"}) || !slices.Equal(reload, []string{"c.service", "d.service"}) {
		t.Errorf("restart %q, reload %q", restart, reload)
	}
	if restart, reload := unitsOf(nil); restart == nil || reload == nil {
		t.Error("nil lists: the plan's JSON would say null")
	}
}
