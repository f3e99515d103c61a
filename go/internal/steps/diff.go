package steps

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lollypops/lollypops/go/internal/activation"
	"github.com/lollypops/lollypops/go/internal/closure"
)

// DiffFile is where the diff step leaves a host's diff as JSON, in the run
// directory, for --json.
func DiffFile(runDir, host string) string {
	return filepath.Join(runDir, "diff", host+".json")
}

// Diff builds the host's new system (on the host, or here and copied, as
// the rebuild would) and prints what it changes against the running one.
// Nothing is activated; the new system's GC root is removed at the end.
func Diff(ctx context.Context, e *Env) (Outcome, error) {
	h := e.Host
	d := &h.Deployment
	c, err := e.connect(ctx)
	if err != nil {
		return Outcome{}, err
	}
	id, err := newID()
	if err != nil {
		return Outcome{}, err
	}
	var system string
	if d.EvaluatesHere() {
		b, err := e.buildOff(ctx)
		if err != nil {
			return Outcome{}, err
		}
		system = b.system
		err = e.deliver(ctx, c, b)
		b.release()
		if err != nil {
			return Outcome{}, err
		}
	}
	if err := e.prepare(ctx, c, id); err != nil {
		return Outcome{}, err
	}
	defer e.cleanup(ctx, c, id)
	if d.EvaluatesHere() {
		out, err := e.hostOutput(ctx, c, "registering the system", activation.PinArgv(id, system))
		if err != nil {
			return Outcome{}, err
		}
		system, err = activation.ParseSystem(out)
		if err != nil {
			return Outcome{}, err
		}
	} else {
		out, err := e.hostOutput(ctx, c, "building the system", activation.BuildArgv(d.ConfigDir+"/flake", h.Name, id, flakeDir(h)))
		if err != nil {
			return Outcome{}, &Hinted{Err: err, Advice: fmt.Sprintf("the build's output is above; if %s/flake is missing, run the host's deploy-flake task first", d.ConfigDir)}
		}
		if system, err = activation.ParseSystem(out); err != nil {
			return Outcome{}, err
		}
	}
	script, err := closure.ScriptArgs(system, "")
	if err != nil {
		return Outcome{}, err
	}
	out, err := e.hostOutput(ctx, c, "reading both closures", script)
	if err != nil {
		return Outcome{}, err
	}
	col, err := closure.ParseOutput([]byte(out))
	if err != nil {
		return Outcome{}, fmt.Errorf("reading the closures: %w", err)
	}
	diff, err := closure.Compare(col.Current, col.New)
	if err != nil {
		return Outcome{}, err
	}
	if err := diff.WriteText(e.Stdout); err != nil {
		return Outcome{}, err
	}
	var js bytes.Buffer
	if err := diff.WriteJSON(&js); err != nil {
		return Outcome{}, err
	}
	file := DiffFile(e.Run.Path, h.Name)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return Outcome{}, err
	}
	if err := os.WriteFile(file, js.Bytes(), 0o600); err != nil {
		return Outcome{}, err
	}
	salt, err := e.planSalt()
	if err != nil {
		return Outcome{}, err
	}
	if salt != "" {
		if err := e.planHost(ctx, c, salt, system, diff); err != nil {
			return Outcome{}, err
		}
	}
	return Outcome{Note: fmt.Sprintf("%d added, %d removed, %d changed", len(diff.Added), len(diff.Removed), len(diff.Changed))}, nil
}
