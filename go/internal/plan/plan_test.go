package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

func load(t *testing.T, name string) *config.Inventory {
	t.Helper()
	inv, err := config.Load("../config/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func names(g *Graph) []string {
	var out []string
	for _, t := range g.Tasks {
		out = append(out, t.Name)
	}
	return out
}

func TestBuildMinimalMatchesSeedListing(t *testing.T) {
	g := Build(load(t, "minimal.json"))
	// The seed README's listing, in its order, plus each host's diff and "all".
	want := []string{
		"host1", "host1:check-vars", "host1:deploy-flake", "host1:deploy-secrets", "host1:rebuild", "host1:diff",
		"host2", "host2:check-vars", "host2:deploy-flake", "host2:deploy-secrets", "host2:rebuild", "host2:diff",
		"all",
	}
	if got := names(g); !slices.Equal(got, want) {
		t.Errorf("tasks:\n got %q\nwant %q", got, want)
	}
	if d := g.Lookup("host1:rebuild").Deps; !slices.Equal(d, []string{"host1:check-vars"}) {
		t.Errorf("rebuild deps = %q", d)
	}
	// The diff builds from the deployed flake.
	if d := g.Lookup("host1:diff").Deps; !slices.Equal(d, []string{"host1:check-vars", "host1:deploy-flake"}) {
		t.Errorf("diff deps = %q", d)
	}
	if c := g.Lookup("host1").Calls; !slices.Equal(c, []string{"host1:deploy-flake", "host1:deploy-secrets", "host1:rebuild"}) {
		t.Errorf("host1 calls = %q", c)
	}
	if d := g.Lookup("all").Deps; !slices.Equal(d, []string{"host1", "host2"}) {
		t.Errorf("all deps = %q", d)
	}
	if g.Lookup("default") != nil {
		t.Error("a task named default would run on a bare invocation")
	}
}

func TestBuildExtraTasks(t *testing.T) {
	g := Build(load(t, "full.json"))
	want := []string{
		"ahorn", "ahorn:check-vars", "ahorn:deploy-flake", "ahorn:deploy-secrets", "ahorn:rebuild", "ahorn:diff", "ahorn:example",
		"birne", "birne:check-vars", "birne:deploy-flake", "birne:deploy-secrets", "birne:rebuild", "birne:diff",
		"all",
	}
	if got := names(g); !slices.Equal(got, want) {
		t.Errorf("tasks:\n got %q\nwant %q", got, want)
	}
	r := g.Lookup("ahorn:rebuild")
	if r.Kind != Extra || !slices.Equal(r.Deps, []string{"ahorn:example"}) {
		t.Errorf("replaced rebuild: kind %v deps %q", r.Kind, r.Deps)
	}
	if c := g.Lookup("ahorn").Calls; !slices.Equal(c, []string{"ahorn:deploy-secrets", "ahorn:example", "ahorn:rebuild"}) {
		t.Errorf("ahorn calls = %q", c)
	}
}

func TestSelect(t *testing.T) {
	g := Build(load(t, "full.json"))
	cases := []struct {
		calls []string
		want  []string
	}{
		{[]string{"birne:deploy-secrets"}, []string{"birne:check-vars", "birne:deploy-secrets"}},
		{[]string{"ahorn:rebuild"}, []string{"ahorn:rebuild", "ahorn:example"}},
		{[]string{"ahorn"}, []string{"ahorn", "ahorn:check-vars", "ahorn:deploy-secrets", "ahorn:rebuild", "ahorn:example"}},
		// "all" selects everything but ahorn:deploy-flake, which ahorn's
		// lollypops.tasks leaves out, and the diffs.
		{[]string{"all"}, slices.DeleteFunc(names(g), func(n string) bool {
			return n == "ahorn:deploy-flake" || strings.HasSuffix(n, ":diff")
		})},
		// birne evaluates locally: its diff needs no deployed flake.
		{[]string{"birne:diff"}, []string{"birne:check-vars", "birne:diff"}},
	}
	for _, c := range cases {
		sel, err := g.Select(c.calls)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(sel); !slices.Equal(got, c.want) {
			t.Errorf("Select(%q):\n got %q\nwant %q", c.calls, got, c.want)
		}
	}
	sel, _ := g.Select([]string{"ahorn"})
	if got := sel.HostSteps()["ahorn"]; !slices.Equal(got, []string{"check-vars", "deploy-secrets", "rebuild", "example"}) {
		t.Errorf("HostSteps = %q", got)
	}
}

func TestSelectUnknown(t *testing.T) {
	g := Build(load(t, "minimal.json"))
	for _, c := range []struct {
		name string
		want []string
	}{
		{"hots1", []string{"host1"}},
		{"host1:rebuidl", []string{"host1:rebuild"}},
		{"host1:deploy", []string{"host1:deploy-flake", "host1:deploy-secrets"}},
		{"nonsense-that-matches-nothing", nil},
	} {
		_, err := g.Select([]string{"host1", c.name})
		var ut *UnknownTaskError
		if !errors.As(err, &ut) || ut.Name != c.name || !slices.Equal(ut.Suggestions, c.want) {
			t.Errorf("Select(%q): %#v, want suggestions %q", c.name, err, c.want)
		}
	}
	if got := DidYouMean([]string{"a", "b"}); got != `did you mean "a" or "b"?` {
		t.Errorf("DidYouMean = %q", got)
	}
}

func TestCheckActionSuggests(t *testing.T) {
	var ae *ActionError
	if err := CheckAction("swich"); !errors.As(err, &ae) || !slices.Equal(ae.Suggestions, []string{"switch"}) {
		t.Errorf("CheckAction(swich) = %#v", err)
	}
	if err := CheckAction("frobnicate"); !errors.As(err, &ae) || len(ae.Suggestions) != 0 {
		t.Errorf("CheckAction(frobnicate) = %#v", err)
	}
	for _, a := range Actions {
		if err := CheckAction(a); err != nil {
			t.Error(err)
		}
	}
}

func TestActivationFollows(t *testing.T) {
	inv := load(t, "full.json")
	g := Build(inv)
	whole, _ := g.Select([]string{"birne"})
	part, _ := g.Select([]string{"birne:deploy-secrets", "birne:rebuild"})
	cases := []struct {
		g      *Graph
		host   string
		action string
		want   bool
	}{
		{whole, "birne", "switch", true},
		{whole, "birne", "test", true},
		{whole, "birne", "boot", false},
		{part, "birne", "switch", false},
		{g, "ahorn", "switch", false}, // ahorn replaced rebuild
	}
	for _, c := range cases {
		if got := ActivationFollows(c.g, inv.Hosts[c.host], c.action); got != c.want {
			t.Errorf("ActivationFollows(%s, %s) = %v", c.host, c.action, got)
		}
	}
}

func TestCompareNatural(t *testing.T) {
	in := []string{"host10", "host2", "a", "host1", "host01", "web-b", "web-a", "b2c", "b10c"}
	SortNatural(in)
	want := []string{"a", "b2c", "b10c", "host01", "host1", "host2", "host10", "web-a", "web-b"}
	if !slices.Equal(in, want) {
		t.Errorf("got %q\nwant %q", in, want)
	}
}

func TestCheckAction(t *testing.T) {
	for _, a := range Actions {
		if err := CheckAction(a); err != nil {
			t.Error(err)
		}
	}
	for _, a := range []string{"", "swtich", "switch;id", "--help"} {
		if CheckAction(a) == nil {
			t.Errorf("CheckAction(%q) accepted", a)
		}
	}
}

// A home-manager target has the same umbrella and step names as a host,
// but only the built-ins that mean something for a home.
func TestBuildHome(t *testing.T) {
	inv := load(t, "homes.json")
	g := Build(inv)
	want := []string{
		"alice@birne", "alice@birne:check-vars", "alice@birne:deploy-secrets", "alice@birne:rebuild", "alice@birne:hello",
		"all",
	}
	if got := names(g); !slices.Equal(got, want) {
		t.Errorf("tasks:\n got %q\nwant %q", got, want)
	}
	if c := g.Lookup("alice@birne").Calls; !slices.Equal(c, []string{"alice@birne:deploy-secrets", "alice@birne:rebuild"}) {
		t.Errorf("umbrella calls %q", c)
	}
	if d := g.Lookup("all").Deps; !slices.Equal(d, []string{"alice@birne"}) {
		t.Errorf("all deps %q", d)
	}
	if !ActivationFollows(g, inv.Hosts["alice@birne"], "switch") {
		t.Error("a home's post-activation secrets do not wait for its activation")
	}
	sel, err := SelectHosts([]HostTags{{Name: "alice@birne", Tags: []string{"desktop"}}, {Name: "birne"}}, Selector{"alice@*"}, nil, "--on")
	if err != nil || !slices.Equal(sel, []string{"alice@birne"}) {
		t.Errorf("--on alice@*: %q, %v", sel, err)
	}
}
