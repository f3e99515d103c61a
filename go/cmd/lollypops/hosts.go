package main

import (
	"fmt"
	"os"

	"github.com/lollypops/lollypops/go/internal/deploy"
	"github.com/spf13/pflag"
)

// Environment the app wrapper (nix/apps.nix) sets: the flake, locked, and
// its host names, which the app lists without evaluating any host.
const (
	envFlake      = "LOLLYPOPS_FLAKE"
	envFlakeHosts = "LOLLYPOPS_FLAKE_HOSTS"
	envInventory  = "LOLLYPOPS_INVENTORY"
)

// hostFlags say where a run's hosts come from.
type hostFlags struct {
	Inventory string
	Flake     string
	EvalJobs  int
	NoCache   bool
	fs        *pflag.FlagSet
}

func (h *hostFlags) AddFlags(fs *pflag.FlagSet) {
	h.fs = fs
	fs.StringVar(&h.Flake, "flake", os.Getenv(envFlake),
		"The flake whose nixosConfigurations to deploy (`REF`: a directory or flake reference). The app of your flake sets it; each command evaluates only the hosts it needs.")
	fs.StringVar(&h.Inventory, "inventory", os.Getenv(envInventory),
		"Read the hosts from an inventory JSON `FILE` (nix/inventory.nix writes one) instead of evaluating a flake.")
	fs.IntVar(&h.EvalJobs, "eval-jobs", 0, "Evaluate at most this many hosts at once, each in its own nix process (default: one per CPU).")
	fs.BoolVar(&h.NoCache, "no-eval-cache", false, "Evaluate every host anew, neither reading nor writing the evaluation cache.")
}

// check picks one source: a flag given on the command line wins over one
// from the environment.
func (h *hostFlags) check() error {
	changed := func(name string) bool { return h.fs != nil && h.fs.Changed(name) }
	switch {
	case changed("flake") && changed("inventory"):
		return usage("--flake and --inventory: give one of them", "--flake evaluates the hosts of a flake; --inventory reads them from a JSON file")
	case changed("inventory"):
		h.Flake = ""
	case changed("flake"):
		h.Inventory = ""
	case h.Flake != "" && h.Inventory != "":
		h.Inventory = "" // the app's flake, over an inventory left in the environment
	}
	if h.Flake == "" && h.Inventory == "" {
		return usage("no hosts given: neither --flake nor --inventory", "run lollypops through your flake's app (nix run . -- ...), which passes the flake; or pass --flake DIR")
	}
	if h.EvalJobs < 0 {
		return usage(fmt.Sprintf("--eval-jobs %d: not a number of processes", h.EvalJobs), "--eval-jobs 4; without it, one per CPU")
	}
	return nil
}

// spec is where the run's hosts come from, for package deploy.
func (h *hostFlags) spec() deploy.Spec {
	s := deploy.Spec{Inventory: h.Inventory, Flake: h.Flake, EvalJobs: h.EvalJobs, NoCache: h.NoCache}
	// The app's list of the flake's targets holds for the app's flake only.
	if file := os.Getenv(envFlakeHosts); file != "" && s.Flake != "" && os.Getenv(envFlake) == s.Flake {
		s.NamesFile = file
	}
	return s
}
