package main

import (
	"github.com/spf13/pflag"
)

// rollout is --batch and --max-failures: package deploy's scheduler
// deploys the selected hosts in batches, each batch in parallel, the next
// one only when the failures so far stay within the threshold.
type rollout struct {
	Batch       string // N or P%
	MaxFailures string // N or P%
	fs          *pflag.FlagSet
}

func (r *rollout) AddFlags(fs *pflag.FlagSet) {
	r.fs = fs
	fs.StringVar(&r.Batch, "batch", "", "Deploy the selected hosts in batches of this many hosts (N) or this share of them (P%), each batch in parallel, one batch after the other.")
	fs.StringVar(&r.MaxFailures, "max-failures", "0", "With --batch: stop the rollout, starting no further batch, once more hosts than this (N, or P% of the selected hosts) have failed.")
}

func (r *rollout) enabled() bool { return r.Batch != "" }

// check refuses --max-failures without --batch; package deploy checks
// the values against the run's hosts (deploy.CheckSchedule).
func (r *rollout) check() error {
	if !r.enabled() && r.fs != nil && r.fs.Changed("max-failures") {
		return usage("--max-failures needs --batch", "lollypops --batch 10% --max-failures 2 all")
	}
	return nil
}
