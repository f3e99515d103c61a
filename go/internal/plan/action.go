package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
)

// Actions are the values REBUILD_ACTION may take.
var Actions = []string{"switch", "boot", "test", "dry-activate", "build"}

// Activates reports whether action activates the new configuration now.
func Activates(action string) bool { return action == "switch" || action == "test" }

// ActionError is an unknown REBUILD_ACTION.
type ActionError struct {
	Action      string
	Suggestions []string // what may have been meant
}

func (e *ActionError) Error() string {
	return fmt.Sprintf("REBUILD_ACTION %q is not one of %s", e.Action, strings.Join(Actions, ", "))
}

// CheckAction returns an *ActionError for an unknown REBUILD_ACTION.
func CheckAction(action string) error {
	if slices.Contains(Actions, action) {
		return nil
	}
	return &ActionError{Action: action, Suggestions: Suggest(action, Actions)}
}

// ActivationFollows reports whether, in the run of graph g, host h is
// deployed as a whole with an activation after its secrets: its umbrella
// task runs, deploy-secrets and rebuild are built-in and in that order in
// lollypops.tasks, and the action activates. Post-activation secrets then
// wait for the activation, and owners it creates may be missing before it.
func ActivationFollows(g *Graph, h *config.Host, action string) bool {
	if t := g.Lookup(h.Name); t == nil || t.Kind != Umbrella || !Activates(action) {
		return false
	}
	if !h.IsBuiltin(config.TaskDeploySecrets) || !h.IsBuiltin(config.TaskRebuild) {
		return false
	}
	s := slices.Index(h.Tasks, config.TaskDeploySecrets)
	r := slices.Index(h.Tasks, config.TaskRebuild)
	return s >= 0 && r > s
}
