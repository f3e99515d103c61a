package secrets

import (
	"os"
	"strings"
	"testing"
)

// A file written before its group exists (soft: the activation creates
// the group) gets no bits for the group or others: whatever group it has
// until it is written again — root's, or the owner's primary group, which
// on NixOS is "users", every normal user — no one but its owner reads it.
// The activation may never come (the rebuild fails, or is rolled back).
// The receiver reports what it wrote.
func TestReceiverPendingFileHasNoGroupOrOtherBits(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		s := newAttackScene(t) // needs root; nobody owns s.home
		inHome := nobodySecret(s.home+"/app/key", "0440")
		inHome.Secret.Group = "lollypops-no-such-group"
		inHome.Data = []byte("the owner's secret")
		inRoot := &Value{Secret: secret(s.base+"/keys/key", "0751"), Data: []byte("root's secret")}
		inRoot.Secret.Group = "lollypops-no-such-group"
		noUser := &Value{Secret: secret(s.base+"/keys/nouser", "0644"), Data: []byte("x")}
		noUser.Secret.Owner = "lollypops-no-such-user"
		out, errOut, err := receive(t, sh, encode(t, &Stream{Soft: true, Values: []Value{*inHome, *inRoot, *noUser}}))
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		for p, want := range map[string]struct {
			uid, gid, mode uint32
		}{
			inHome.Secret.Path: {nobody, nobody, 0o400}, // nobody's primary group is nogroup here
			inRoot.Secret.Path: {0, 0, 0o700},
			noUser.Secret.Path: {0, 0, 0o600},
		} {
			uid, gid, mode := ownerOf(t, p)
			if uid != want.uid || gid != want.gid || mode != want.mode {
				t.Errorf("%s: %d:%d %04o, want %d:%d %04o", p, uid, gid, mode, want.uid, want.gid, want.mode)
			}
		}
		rep, _ := ParseReport([]byte(out))
		if len(rep.Pending) != 3 {
			t.Fatalf("pending: %+v", rep.Pending)
		}
		for _, p := range rep.Pending {
			switch p.Path {
			case inHome.Secret.Path:
				if p.Owner != "nobody" || p.Group != "lollypops-no-such-group" || p.Missing != "group" || p.Wrote != "nobody:nogroup 400" {
					t.Errorf("in the owner's directory: %+v", p)
				}
			case inRoot.Secret.Path:
				if p.Missing != "group" || p.Wrote != "root:root 700" {
					t.Errorf("in root's directory: %+v", p)
				}
			case noUser.Secret.Path:
				if p.Missing != "user" || p.Wrote != "root:root 600" {
					t.Errorf("no user: %+v", p)
				}
			}
		}
		if b, _ := os.ReadFile(inHome.Secret.Path); !strings.Contains(string(b), "owner's secret") {
			t.Errorf("content %q", b)
		}
	})
}
