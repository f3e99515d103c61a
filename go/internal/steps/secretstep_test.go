package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/secrets"
)

// What a failed receiver session says is what is on the host.
func TestSessionErrorTellsWhatIsWritten(t *testing.T) {
	failed := &execx.Error{Name: "ssh", ExitCode: 1}
	dropped := &execx.Error{Name: "ssh", ExitCode: 255}
	committed := &secrets.Report{Committed: true, Wrote: []string{"/run/keys/a"}}
	partial := &secrets.Report{Wrote: []string{"/run/keys/a"}}
	none := &secrets.Report{}
	for _, c := range []struct {
		name       string
		rep        *secrets.Report
		ctx, wait  error
		send       error
		commitSent bool
		want       string // "" for no error
	}{
		{"ok", committed, nil, nil, nil, true, ""},
		{"manifest failed after the commit", committed, nil, failed, nil, true, "the secrets are written on h, but updating the list"},
		{"interrupt after the commit", committed, context.Canceled, nil, nil, true, "interrupted after the secrets were committed: every file of the session is written"},
		{"moves failed half-way", partial, nil, failed, nil, true, "only partly written on h: 1 file written (/run/keys/a)"},
		{"interrupt before the commit", none, context.Canceled, failed, context.Canceled, false, "nothing was written on h"},
		{"receiver refused", none, nil, failed, nil, true, "writing the secrets on the host"},
		{"dropped after the commit record", none, nil, dropped, nil, true, "before the host confirmed them"},
		{"dropped while sending", none, nil, dropped, errors.New("broken pipe"), false, "writing the secrets on the host"},
	} {
		err := sessionError("h", c.rep, c.ctx, c.wait, c.send, c.commitSent)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if err != nil && c.rep == none && strings.Contains(err.Error(), "written on h") && !strings.Contains(err.Error(), "nothing") {
			t.Errorf("%s: claims files were written: %v", c.name, err)
		}
	}
	var h *Hinted
	if err := sessionError("h", none, nil, failed, nil, true); !errors.As(err, &h) || !strings.Contains(h.Hint(), "no file of this session was written") {
		t.Errorf("hint: %v", err)
	}
}
