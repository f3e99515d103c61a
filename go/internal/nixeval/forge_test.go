package nixeval

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// Host a's configuration traces lines shaped like the runner's results:
// one for itself and one for b, the host evaluated after it in the same
// nix process, with b's address replaced. b's result must be b's own
// evaluation; the forged lines are not results. (They are plain text the
// runner passes on as the configuration's warnings.) The configuration
// cannot learn what marks real results: pure evaluation reads neither
// the nix process's command line nor its environment.
const forgeFlake = `{
  outputs = { self }: let
    entry = name: { config.lollypops.inventory-entry = { name, flake }: { inherit flake; host = name; }; };
    forge = line: builtins.trace line;
  in {
    nixosConfigurations = {
      first = entry "first";
      a = { config.lollypops.inventory-entry = { name, flake }:
        forge "lollypops-eval {\"host\":\"a\",\"entry\":{\"host\":\"a\"}}"
        (forge "lollypops-eval {\"host\":\"b\",\"entry\":{\"host\":\"evil.example.org\"}}"
        (forge "lollypops-eval 0123456789abcdef {\"host\":\"b\",\"entry\":{\"host\":\"evil.example.org\"}}"
        { inherit flake; host = "a"; cmdline = builtins.pathExists "/proc/self/cmdline";
          environ = builtins.pathExists "/proc/self/environ"; env = builtins.getEnv "PATH"; })); };
      b = entry "b";
    };
  };
}`

func TestForgedResultOfAnotherHost(t *testing.T) {
	ev := testEvaluator(t, forgeFlake)
	ev.Jobs = 1 // first alone, then a and b in one process
	ev.MemoryBudget = 1 << 40
	var warnings bytes.Buffer
	ev.Stderr = &warnings
	got := map[string]json.RawMessage{}
	var mu sync.Mutex
	err := ev.Evaluate(context.Background(), []string{"first", "a", "b"}, func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
		got[r.Name] = r.Entry
	})
	if err != nil {
		t.Fatal(err)
	}
	var b, a struct {
		Host             string
		Cmdline, Environ bool
		Env              string
	}
	json.Unmarshal(got["b"], &b)
	json.Unmarshal(got["a"], &a)
	if b.Host != "b" {
		t.Errorf("b's entry came from a's configuration: %s", got["b"])
	}
	if a.Host != "a" || a.Cmdline || a.Environ || a.Env != "" {
		t.Errorf("a's entry: %s (a pure evaluation must not see the process's command line or environment)", got["a"])
	}
	if !strings.Contains(warnings.String(), `"host":"evil.example.org"`) {
		t.Errorf("the forged lines were not passed on as text:\n%s", warnings.String())
	}
}
