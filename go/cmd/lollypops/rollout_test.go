package main

import (
	"slices"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/plan"
)

func TestBatches(t *testing.T) {
	inv, err := config.Load(full)
	if err != nil {
		t.Fatal(err)
	}
	g := plan.Build(inv)
	for _, c := range []struct {
		batch string
		calls []string
		want  [][]string
	}{
		{"1", []string{"all"}, [][]string{{"ahorn"}, {"birne"}}},
		{"50%", []string{"birne", "ahorn"}, [][]string{{"ahorn"}, {"birne"}}},
		{"10%", []string{"all"}, [][]string{{"ahorn"}, {"birne"}}}, // at least one host a batch
		{"2", []string{"birne:rebuild", "ahorn:deploy-secrets", "birne:deploy-secrets"},
			[][]string{{"ahorn:deploy-secrets", "birne:rebuild", "birne:deploy-secrets"}}},
	} {
		r := &rollout{Batch: c.batch}
		got, _, err := r.batches(c.calls, g)
		if err != nil || !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("--batch %s %q: %q %v, want %q", c.batch, c.calls, got, err, c.want)
		}
	}
	for _, bad := range []string{"0", "-1", "x", "101%", "%"} {
		r := &rollout{Batch: bad}
		if _, _, err := r.batches([]string{"all"}, g); err == nil {
			t.Errorf("--batch %q accepted", bad)
		}
	}
	if n, err := count("max-failures", "50%", 5, 0); err != nil || n != 2 {
		t.Errorf("50%% of 5: %d %v", n, err)
	}
	code, _, errOut := runCLI(t, "--inventory", full, "--max-failures", "1", "all")
	if code != exitUsage || errOut != "lollypops: --max-failures needs --batch\nlollypops: hint: lollypops --batch 10% --max-failures 2 all\n" {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
