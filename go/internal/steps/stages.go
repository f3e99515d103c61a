package steps

import (
	"sync"
	"time"

	"github.com/lollypops/lollypops/go/internal/report"
)

// Stages records when the parts of a step began and ended (--timings, the
// run report's stages). A nil *Stages records nothing.
type Stages struct {
	mu   sync.Mutex
	list []report.Stage
}

// Begin starts the stage name; the returned function ends it.
func (s *Stages) Begin(name string) func() {
	if s == nil {
		return func() {}
	}
	start := time.Now()
	return func() {
		end := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.list = append(s.list, report.Stage{Name: name, Start: start, End: end})
	}
}

// List returns the stages, in the order they began.
func (s *Stages) List() []report.Stage {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]report.Stage(nil), s.list...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Start.Before(out[j-1].Start); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// stage begins a stage of the step (Env.Stages).
func (e *Env) stage(name string) func() { return e.Stages.Begin(name) }
