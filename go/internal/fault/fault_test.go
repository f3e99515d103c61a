package fault

import (
	"errors"
	"fmt"
	"testing"
)

type hinted struct{ msg, hint string }

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Hint() string  { return h.hint }

type input struct{}

func (input) Error() string { return "bad inventory" }
func (input) Kind() Kind    { return Input }

func TestKindAndHint(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind Kind
		hint string
	}{
		{errors.New("plain"), Internal, ""},
		{Usagef("try --help", "bad flag %q", "-z"), Usage, "try --help"},
		{fmt.Errorf("wrapped: %w", &hinted{"x", "do y"}), Internal, "do y"},
		{fmt.Errorf("selecting: %w", input{}), Input, ""},
		// The first kind in the chain wins: an input error stays one when
		// a usage path carries it.
		{As(Usage, fmt.Errorf("--on: %w", input{})), Input, ""},
		{As(Usage, errors.New("x")), Usage, ""},
		{&Error{K: HostsFailed, Err: &hinted{"y", "z"}}, HostsFailed, "z"},
		{errors.Join(errors.New("a"), &hinted{"b", "from the second"}), Internal, "from the second"},
		{&hinted{"empty hint", ""}, Internal, ""},
	} {
		if k := KindOf(c.err); k != c.kind {
			t.Errorf("%v: kind %v, want %v", c.err, k, c.kind)
		}
		if h := HintOf(c.err); h != c.hint {
			t.Errorf("%v: hint %q, want %q", c.err, h, c.hint)
		}
	}
	if !Reported(&Error{K: HostsFailed}) || Reported(&Error{K: HostsFailed, Msg: "x"}) || Reported(nil) {
		t.Error("Reported")
	}
}
