package secrets

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

// receive runs the real receiver script with the local sh, as the host would.
func receive(t *testing.T, stream []byte) (stdout, stderr string, err error) {
	t.Helper()
	for _, tool := range []string{"sh", "getent", "mktemp", "head", "wc", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("receiver tests: %s is not installed here (a build sandbox?); the e2e tests run the receiver too", tool)
		}
	}
	cmd := exec.Command("sh", ReceiverArgv()[1:]...)
	cmd.Stdin = bytes.NewReader(stream)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// secret is owned by the user running the test, who can chown to itself.
func secret(p, mode string) *config.Secret {
	owner, group := "root", "root"
	if u, err := user.Current(); err == nil && u.Uid != "0" {
		owner = u.Username
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			group = g.Name
		}
	}
	return &config.Secret{Name: filepath.Base(p), Path: p, Owner: owner, Group: group, Mode: mode,
		UploadAt: config.PreActivation}
}

func encode(t *testing.T, s *Stream) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// leftovers lists temporary files the receiver left in dir, recursively.
func leftovers(t *testing.T, dir string) []string {
	var found []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(info.Name(), ".lollypops-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func TestReceiverExactBytesAndModes(t *testing.T) {
	dir := t.TempDir()
	values := []Value{
		{secret(dir+"/keys/binary", "0400"), []byte("a\x00b\xff\n\n")},
		{secret(dir+"/keys/dash-n", "0440"), []byte("-n")},
		{secret(dir+"/keys/trailing", "0600"), []byte("line\n\n\n")},
		{secret(dir+"/keys/empty", "0400"), []byte{}},
		{secret(dir+"/deep/er/space name", "0640"), []byte("x'y\"z$(id)`w`\\")},
		{secret(dir+"/keys/no-access", "0000"), []byte("nobody may read this")},
		{secret(dir+"/keys/setgid", "2750"), []byte("g")},
	}
	out, errOut, err := receive(t, encode(t, &Stream{Values: values}))
	if err != nil {
		t.Fatalf("receiver: %v\n%s", err, errOut)
	}
	for _, v := range values {
		got, err := os.ReadFile(v.Secret.Path)
		if err != nil && os.IsPermission(err) && v.Secret.Mode == "0000" {
			got, err = v.Data, nil // unreadable to anyone but root, as asked
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, v.Data) {
			t.Errorf("%s: got %q, want %q", v.Secret.Path, got, v.Data)
		}
		st, _ := os.Stat(v.Secret.Path)
		if got, want := st.Mode()&(os.ModePerm|os.ModeSetgid|os.ModeSetuid|os.ModeSticky), parseMode(v.Secret.Mode); got != want {
			t.Errorf("%s: mode %o, want %o", v.Secret.Path, got, want)
		}
	}
	st, _ := os.Stat(dir + "/deep/er")
	if st.Mode().Perm() != 0o711 {
		t.Errorf("created directory mode %o, want 711", st.Mode().Perm())
	}
	rep, err := ParseReport([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Wrote) != len(values) || !slices.Contains(rep.CreatedDirs, dir+"/deep/er") {
		t.Errorf("report: %+v", rep)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

func parseMode(s string) os.FileMode {
	var m uint32
	for _, c := range s {
		m = m*8 + uint32(c-'0')
	}
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

func TestReceiverTruncatedStreamWritesNothing(t *testing.T) {
	dir := t.TempDir()
	old := dir + "/keys/a"
	os.MkdirAll(dir+"/keys", 0o700)
	os.WriteFile(old, []byte("old"), 0o400)
	stream := encode(t, &Stream{Values: []Value{
		{secret(old, "0400"), []byte("new value of a")},
		{secret(dir+"/keys/b", "0400"), []byte("0123456789")},
	}})
	// Cut the stream inside the second value, as a dropped connection would.
	cut := bytes.Index(stream, []byte("0123456789")) + 4
	_, errOut, err := receive(t, stream[:cut])
	if err == nil {
		t.Fatal("receiver succeeded on a truncated stream")
	}
	if !strings.Contains(errOut, "the stream from the deployer ended early") {
		t.Errorf("stderr: %q", errOut)
	}
	if got, _ := os.ReadFile(old); string(got) != "old" {
		t.Errorf("a was replaced before the commit: %q", got)
	}
	if _, err := os.Stat(dir + "/keys/b"); !os.IsNotExist(err) {
		t.Error("b was written")
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
	// Without the commit record nothing happens either.
	noCommit := bytes.TrimSuffix(stream, []byte("commit\n"))
	if _, _, err := receive(t, noCommit); err == nil {
		t.Fatal("receiver succeeded without a commit")
	}
	if got, _ := os.ReadFile(old); string(got) != "old" {
		t.Errorf("a was replaced without a commit: %q", got)
	}
}

func TestReceiverOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("receiver owner test: needs root to chown")
	}
	dir := t.TempDir()
	s := secret(dir+"/k", "0440")
	s.Owner, s.Group = "nobody", "nogroup"
	if _, errOut, err := receive(t, encode(t, &Stream{Values: []Value{{s, []byte("v")}}})); err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	st, _ := os.Stat(s.Path)
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 65534 {
		t.Errorf("uid %d, want nobody", sys.Uid)
	}

	missing := secret(dir+"/m", "0400")
	missing.Owner, missing.Group = "lollypops-no-such-user", "root"
	_, errOut, err := receive(t, encode(t, &Stream{Values: []Value{{missing, []byte("v")}}}))
	if err == nil || !strings.Contains(errOut, "user or group does not exist: lollypops-no-such-user:root") {
		t.Errorf("missing owner, hard: err=%v stderr=%q", err, errOut)
	}
	if _, err := os.Stat(missing.Path); !os.IsNotExist(err) {
		t.Error("file written although its owner is missing")
	}
	out, errOut, err := receive(t, encode(t, &Stream{Soft: true, Values: []Value{{missing, []byte("v")}}}))
	if err != nil {
		t.Fatalf("missing owner, soft: %v: %s", err, errOut)
	}
	rep, _ := ParseReport([]byte(out))
	if len(rep.Pending) != 1 || rep.Pending[0] != (Pending{Path: missing.Path, Owner: "lollypops-no-such-user", Group: "root"}) {
		t.Errorf("pending: %+v", rep.Pending)
	}
	st, _ = os.Stat(missing.Path)
	if st.Sys().(*syscall.Stat_t).Uid != 0 || st.Mode().Perm() != 0o400 {
		t.Errorf("pending file: uid %d mode %o", st.Sys().(*syscall.Stat_t).Uid, st.Mode().Perm())
	}
}

func TestReceiverManifest(t *testing.T) {
	dir := t.TempDir()
	manifest := dir + "/state/secrets.manifest"
	a, b := secret(dir+"/a", "0400"), secret(dir+"/b", "0400")
	first := &Stream{Manifest: manifest, Keep: []string{a.Path, b.Path},
		Values: []Value{{a, []byte("1")}, {b, []byte("2")}}}
	if _, e, err := receive(t, encode(t, first)); err != nil {
		t.Fatalf("%v: %s", err, e)
	}
	// b is no longer configured: reported, kept.
	second := &Stream{Manifest: manifest, Keep: []string{a.Path}, Values: []Value{{a, []byte("1")}}}
	out, e, err := receive(t, encode(t, second))
	if err != nil {
		t.Fatalf("%v: %s", err, e)
	}
	rep, _ := ParseReport([]byte(out))
	if !slices.Equal(rep.Stale, []string{b.Path}) || len(rep.Removed) != 0 {
		t.Errorf("report: %+v", rep)
	}
	if _, err := os.Stat(b.Path); err != nil {
		t.Error("stale b removed without remove-stale")
	}
	// A kept stale file stays in the manifest: listed again, and removed
	// once remove-stale is set.
	out, _, _ = receive(t, encode(t, second))
	if rep, _ := ParseReport([]byte(out)); !slices.Equal(rep.Stale, []string{b.Path}) {
		t.Errorf("b not listed again: %+v", rep)
	}
	third := &Stream{Manifest: manifest, Keep: []string{a.Path}, RemoveStale: true}
	out, e, err = receive(t, encode(t, third))
	if err != nil {
		t.Fatalf("%v: %s", err, e)
	}
	rep, _ = ParseReport([]byte(out))
	if !slices.Equal(rep.Removed, []string{b.Path}) || len(rep.Stale) != 0 {
		t.Errorf("report: %+v", rep)
	}
	if _, err := os.Stat(b.Path); !os.IsNotExist(err) {
		t.Error("b not removed")
	}
	// Removed files leave the manifest.
	out, _, _ = receive(t, encode(t, third))
	if rep, _ := ParseReport([]byte(out)); len(rep.Removed)+len(rep.Stale) != 0 {
		t.Errorf("b reported again: %+v", rep)
	}
	// A file nobody configures any more is removed too.
	fourth := &Stream{Manifest: manifest, Keep: nil, RemoveStale: true}
	out, e, err = receive(t, encode(t, fourth))
	if err != nil {
		t.Fatalf("%v: %s", err, e)
	}
	rep, _ = ParseReport([]byte(out))
	if !slices.Equal(rep.Removed, []string{a.Path}) {
		t.Errorf("report: %+v", rep)
	}
	if _, err := os.Stat(a.Path); !os.IsNotExist(err) {
		t.Error("a not removed")
	}
	st, _ := os.Stat(manifest)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("manifest mode %o", st.Mode().Perm())
	}
}

func TestAncestors(t *testing.T) {
	if got := ancestors("/run/keys/a/b"); !slices.Equal(got, []string{"/run", "/run/keys", "/run/keys/a"}) {
		t.Errorf("ancestors = %q", got)
	}
	if got := ancestors("/a"); len(got) != 0 {
		t.Errorf("ancestors(/a) = %q", got)
	}
}
