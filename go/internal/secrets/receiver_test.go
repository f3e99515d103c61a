package secrets

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/dev/shelltest"
	"github.com/lollypops/lollypops/go/internal/config"
)

// eachShell runs f once per sh a target may have (package shelltest).
func eachShell(t *testing.T, f func(t *testing.T, sh []string)) {
	for _, tool := range []string{"getent", "mktemp", "head", "stat", "sha256sum", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("receiver tests: %s is not installed here (a build sandbox?); the e2e tests run the receiver too", tool)
		}
	}
	shelltest.Each(t, f)
}

// receiver is one run of the real receiver script, as the host runs it.
type receiver struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	out, err bytes.Buffer
}

func startReceiver(t *testing.T, sh []string, dir string) *receiver {
	t.Helper()
	r := &receiver{cmd: exec.Command(sh[0], append(sh[1:], ReceiverArgv()[1:]...)...)}
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.err
	var err error
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *receiver) wait() error {
	r.stdin.Close()
	return r.cmd.Wait()
}

// receive runs the receiver on stream in a fresh working directory.
func receive(t *testing.T, sh []string, stream []byte) (stdout, stderr string, err error) {
	t.Helper()
	r := startReceiver(t, sh, t.TempDir())
	r.stdin.Write(stream)
	err = r.wait()
	return r.out.String(), r.err.String(), err
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

// modeBits is the permission part of a FileMode as chmod sees it.
func modeBits(m os.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

func TestReceiverExactBytesAndModes(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		values := []Value{
			{secret(dir+"/keys/binary", "0400"), []byte("a\x00b\xff\n\n")},
			{secret(dir+"/keys/dash-n", "0440"), []byte("-n")},
			{secret(dir+"/keys/trailing", "0600"), []byte("line\n\n\n")},
			{secret(dir+"/keys/empty", "0400"), []byte{}},
			{secret(dir+"/deep/er/space name", "0640"), []byte("x'y\"z$(id)`w`\\")},
			{secret(dir+"/keys/back\\slash", "0400"), []byte("sha256sum escapes this name")},
			{secret(dir+"/keys/no-access", "0000"), []byte("nobody may read this")},
			{secret(dir+"/modes/0700", "0700"), []byte("#!/bin/sh\n")},
			{secret(dir+"/modes/0755", "0755"), []byte("x")},
			{secret(dir+"/modes/755", "755"), []byte("x")},
			{secret(dir+"/modes/640", "640"), []byte("x")},
			{secret(dir+"/modes/2750", "2750"), []byte("g")},
			{secret(dir+"/modes/4711", "4711"), []byte("u")},
			{secret(dir+"/modes/1644", "1644"), []byte("t")},
			{secret(dir+"/modes/0111", "0111"), []byte("x only")},
			{secret(dir+"/keys/big", "0400"), bytes.Repeat([]byte("0123456789abcdef"), 1<<16)},
		}
		out, errOut, err := receive(t, sh, encode(t, &Stream{Values: values}))
		if err != nil {
			t.Fatalf("receiver: %v\n%s", err, errOut)
		}
		for _, v := range values {
			got, err := os.ReadFile(v.Secret.Path)
			if err != nil && os.IsPermission(err) {
				got, err = v.Data, nil // unreadable to anyone but root, as asked
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, v.Data) {
				t.Errorf("%s: got %q, want %q", v.Secret.Path, got, v.Data)
			}
			st, _ := os.Stat(v.Secret.Path)
			if got, want := modeBits(st.Mode()), FileMode(v.Secret.Mode); got != want {
				t.Errorf("%s: mode %04o, want %04o", v.Secret.Path, got, want)
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
		if len(rep.Wrote) != len(values) || !rep.Committed || !slices.Contains(rep.CreatedDirs, dir+"/deep/er") {
			t.Errorf("report: %+v", rep)
		}
		if l := leftovers(t, dir); len(l) > 0 {
			t.Errorf("temporary files left: %v", l)
		}
	})
}

func TestReceiverTruncatedStreamWritesNothing(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		old := dir + "/keys/a"
		os.MkdirAll(dir+"/keys", 0o700)
		os.WriteFile(old, []byte("old"), 0o400)
		stream := encode(t, &Stream{Values: []Value{
			{secret(old, "0400"), []byte("new value of a")},
			{secret(dir+"/other/b", "0400"), []byte("0123456789")},
		}})
		// Cut the stream inside the second value, as a dropped connection would.
		cut := bytes.Index(stream, []byte("0123456789")) + 4
		_, errOut, err := receive(t, sh, stream[:cut])
		if err == nil {
			t.Fatal("receiver succeeded on a truncated stream")
		}
		if !strings.Contains(errOut, "the stream from the deployer ended early") {
			t.Errorf("stderr: %q", errOut)
		}
		if got, _ := os.ReadFile(old); string(got) != "old" {
			t.Errorf("a was replaced before the commit: %q", got)
		}
		if _, err := os.Stat(dir + "/other/b"); !os.IsNotExist(err) {
			t.Error("b was written")
		}
		if l := leftovers(t, dir); len(l) > 0 {
			t.Errorf("temporary files left: %v", l)
		}
		// Without the commit record nothing happens either.
		noCommit := bytes.TrimSuffix(stream, []byte("commit\n"))
		if _, _, err := receive(t, sh, noCommit); err == nil {
			t.Fatal("receiver succeeded without a commit")
		}
		if got, _ := os.ReadFile(old); string(got) != "old" {
			t.Errorf("a was replaced without a commit: %q", got)
		}
	})
}

// A session that fails after some files were staged removes them and
// nothing else: not the words of its error message in the working
// directory (bash ran "rm -rf -- <words>" there when a trap used "$@").
func TestReceiverFailureCleansUpOnlyItsOwn(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		work := t.TempDir()
		words := []string{"lollypops:", "user", "does", "not", "exist", "stream", "the", "from", "deployer", "ended", "early"}
		for _, w := range words {
			os.WriteFile(filepath.Join(work, w), []byte("keep me"), 0o644)
		}
		bad := secret(dir+"/b/bad", "0400")
		bad.Owner = "lollypops-no-such-user"
		stream := encode(t, &Stream{Values: []Value{
			{secret(dir+"/a/good", "0400"), []byte("good")},
			{bad, []byte("bad")},
		}})
		r := startReceiver(t, sh, work)
		r.stdin.Write(stream)
		err := r.wait()
		if err == nil || !strings.Contains(r.err.String(), "user lollypops-no-such-user does not exist") {
			t.Fatalf("err=%v stderr=%q", err, r.err.String())
		}
		if _, err := os.Stat(dir + "/a/good"); !os.IsNotExist(err) {
			t.Error("good was written although the session failed")
		}
		if l := leftovers(t, dir); len(l) > 0 {
			t.Errorf("staging left: %v", l)
		}
		for _, w := range words {
			if _, err := os.Stat(filepath.Join(work, w)); err != nil {
				t.Errorf("%s removed from the working directory: %v", w, err)
			}
		}
	})
}

// A signal while the receiver waits for the stream removes what it staged.
func TestReceiverSignalDuringRead(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT} {
			dir, work := t.TempDir(), t.TempDir()
			os.WriteFile(filepath.Join(work, "keep"), nil, 0o644)
			stream := encode(t, &Stream{Values: []Value{
				{secret(dir+"/a/one", "0400"), []byte("one")},
				{secret(dir+"/b/two", "0400"), []byte("two")},
			}})
			r := startReceiver(t, sh, work)
			// Everything but the commit: the receiver waits in get.
			r.stdin.Write(bytes.TrimSuffix(stream, []byte("commit\n")))
			deadline := time.Now().Add(10 * time.Second)
			for len(leftovers(t, dir)) < 2 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if len(leftovers(t, dir)) < 2 {
				t.Fatalf("%v: the receiver staged nothing: %s", sig, r.err.String())
			}
			r.cmd.Process.Signal(sig)
			r.wait()
			if l := leftovers(t, dir); len(l) > 0 {
				t.Errorf("%v: staging left: %v", sig, l)
			}
			if _, err := os.Stat(dir + "/a/one"); !os.IsNotExist(err) {
				t.Errorf("%v: one was written", sig)
			}
			if _, err := os.Stat(filepath.Join(work, "keep")); err != nil {
				t.Errorf("%v: the working directory lost a file", sig)
			}
		}
	})
}

func TestReceiverOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("receiver owner test: needs root to chown")
	}
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		s := secret(dir+"/k", "0440")
		s.Owner, s.Group = "nobody", "nogroup"
		if _, errOut, err := receive(t, sh, encode(t, &Stream{Values: []Value{{s, []byte("v")}}})); err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		st, _ := os.Stat(s.Path)
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65534 || sys.Gid != 65534 {
			t.Errorf("uid:gid %d:%d, want nobody:nogroup", sys.Uid, sys.Gid)
		}

		missing := secret(dir+"/m", "0400")
		missing.Owner, missing.Group = "lollypops-no-such-user", "root"
		_, errOut, err := receive(t, sh, encode(t, &Stream{Values: []Value{{missing, []byte("v")}}}))
		if err == nil || !strings.Contains(errOut, "user lollypops-no-such-user does not exist") {
			t.Errorf("missing owner, hard: err=%v stderr=%q", err, errOut)
		}
		if _, err := os.Stat(missing.Path); !os.IsNotExist(err) {
			t.Error("file written although its owner is missing")
		}
		out, errOut, err := receive(t, sh, encode(t, &Stream{Soft: true, Values: []Value{{missing, []byte("v")}}}))
		if err != nil {
			t.Fatalf("missing owner, soft: %v: %s", err, errOut)
		}
		rep, _ := ParseReport([]byte(out))
		if len(rep.Pending) != 1 || rep.Pending[0] != (Pending{Path: missing.Path, Owner: "lollypops-no-such-user", Group: "root", Missing: "user", Wrote: "root:root 400"}) {
			t.Errorf("pending: %+v", rep.Pending)
		}
		st, _ = os.Stat(missing.Path)
		if st.Sys().(*syscall.Stat_t).Uid != 0 || st.Mode().Perm() != 0o400 {
			t.Errorf("pending file: uid %d mode %o", st.Sys().(*syscall.Stat_t).Uid, st.Mode().Perm())
		}
	})
}

func TestReceiverManifest(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		manifest := dir + "/state/secrets.manifest"
		a, b := secret(dir+"/a", "0400"), secret(dir+"/b", "0400")
		first := &Stream{Manifest: manifest, Keep: []string{a.Path, b.Path},
			Values: []Value{{a, []byte("1")}, {b, []byte("2")}}}
		if _, e, err := receive(t, sh, encode(t, first)); err != nil {
			t.Fatalf("%v: %s", err, e)
		}
		// b is no longer configured: reported, kept.
		second := &Stream{Manifest: manifest, Keep: []string{a.Path}, Values: []Value{{a, []byte("1")}}}
		out, e, err := receive(t, sh, encode(t, second))
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
		out, _, _ = receive(t, sh, encode(t, second))
		if rep, _ := ParseReport([]byte(out)); !slices.Equal(rep.Stale, []string{b.Path}) {
			t.Errorf("b not listed again: %+v", rep)
		}
		third := &Stream{Manifest: manifest, Keep: []string{a.Path}, RemoveStale: true}
		out, e, err = receive(t, sh, encode(t, third))
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
		out, _, _ = receive(t, sh, encode(t, third))
		if rep, _ := ParseReport([]byte(out)); len(rep.Removed)+len(rep.Stale) != 0 {
			t.Errorf("b reported again: %+v", rep)
		}
		// A file nobody configures any more is removed too.
		fourth := &Stream{Manifest: manifest, Keep: nil, RemoveStale: true}
		out, e, err = receive(t, sh, encode(t, fourth))
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
	})
}

// A file is changed when its value differs from the one the manifest has
// for its path, or the manifest has none: a first write, a manifest from
// before the sums. The sums of the files a session does not write stay.
func TestReceiverChanged(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		manifest := dir + "/state/secrets.manifest"
		a, b, c := secret(dir+"/a", "0400"), secret(dir+"/b b", "0400"), secret(dir+"/c", "0400")
		keep := []string{a.Path, b.Path, c.Path}
		changed := func(values ...Value) []string {
			t.Helper()
			out, e, err := receive(t, sh, encode(t, &Stream{Manifest: manifest, Keep: keep, Values: values}))
			if err != nil {
				t.Fatalf("%v: %s", err, e)
			}
			rep, err := ParseReport([]byte(out))
			if err != nil || !rep.Committed {
				t.Fatalf("%v: %+v", err, rep)
			}
			return rep.Changed
		}
		if got := changed(Value{a, []byte("1")}, Value{b, []byte("2")}); !slices.Equal(got, []string{a.Path, b.Path}) {
			t.Errorf("first write: changed %q", got)
		}
		if got := changed(Value{a, []byte("1")}, Value{b, []byte("2")}); len(got) != 0 {
			t.Errorf("same values: changed %q", got)
		}
		// A session with only c (post-activation, say) keeps a's and b's sums.
		if got := changed(Value{c, []byte("3")}); !slices.Equal(got, []string{c.Path}) {
			t.Errorf("c: changed %q", got)
		}
		if got := changed(Value{a, []byte("1")}, Value{b, []byte("new")}, Value{c, []byte("3")}); !slices.Equal(got, []string{b.Path}) {
			t.Errorf("b rotated: changed %q", got)
		}
		data, _ := os.ReadFile(manifest)
		for _, v := range []string{"1", "new", "3"} {
			sum := fmt.Sprintf("%x", sha256Sum([]byte(v)))
			if !strings.Contains(string(data), "\nsha256="+sum+" ") {
				t.Errorf("manifest lacks the sum of %q:\n%s", v, data)
			}
		}
		if strings.Contains(string(data), "sha256=") && strings.Count(string(data), "sha256=") != 3 {
			t.Errorf("manifest:\n%s", data)
		}
		// A manifest of paths only, as older versions wrote it: changed.
		if err := os.WriteFile(manifest, []byte(strings.Join(keep, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := changed(Value{a, []byte("1")}); !slices.Equal(got, []string{a.Path}) {
			t.Errorf("manifest without sums: changed %q", got)
		}
		// Sum lines are never stale files.
		out, _, _ := receive(t, sh, encode(t, &Stream{Manifest: manifest, Keep: []string{a.Path}, RemoveStale: true}))
		if rep, _ := ParseReport([]byte(out)); len(rep.Stale) != 0 || !slices.Equal(rep.Removed, []string{b.Path, c.Path}) {
			t.Errorf("stale: %+v", rep)
		}
		data, _ = os.ReadFile(manifest)
		if strings.Count(string(data), "sha256=") != 1 {
			t.Errorf("the removed files' sums stayed:\n%s", data)
		}
	})
}

// Output of the login shell's start-up files is not the receiver's.
func TestParseReportKeepsOtherLines(t *testing.T) {
	out := "Welcome to host1!\nlollypops-secrets: created-dir /run/keys/x\nlollypops-secrets: wrote /run/keys/x/a\n" +
		"wrote /etc/shadow\nlollypops-secrets: committed\n"
	rep, err := ParseReport([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Committed || !slices.Equal(rep.Wrote, []string{"/run/keys/x/a"}) ||
		!slices.Equal(rep.Other, []string{"Welcome to host1!", "wrote /etc/shadow"}) {
		t.Errorf("report: %+v", rep)
	}
	if _, err := ParseReport([]byte("lollypops-secrets: frobnicated /x\n")); err == nil {
		t.Error("an unknown record of the receiver was accepted")
	}
}

func TestFileMode(t *testing.T) {
	for in, want := range map[string]uint32{"400": 0o400, "0400": 0o400, "755": 0o755, "4755": 0o4755, "1777": 0o1777, "0000": 0} {
		if got := FileMode(in); got != want {
			t.Errorf("FileMode(%q) = %04o, want %04o", in, got, want)
		}
	}
	// The stream carries four digits, the umask and whether chmod is needed.
	var b bytes.Buffer
	Encode(&b, &Stream{Values: []Value{{secret("/k/a", "755"), []byte("v")}}})
	if !strings.Contains(b.String(), " 0755 0022 1 ") {
		t.Errorf("stream: %q", b.String())
	}
	b.Reset()
	Encode(&b, &Stream{Values: []Value{{secret("/k/a", "640"), []byte("v")}}})
	if !strings.Contains(b.String(), " 0640 0137 0 ") {
		t.Errorf("stream: %q", b.String())
	}
}

func ExampleParseReport() {
	rep, _ := ParseReport([]byte("lollypops-secrets: wrote /run/keys/db\nlollypops-secrets: committed\n"))
	fmt.Println(rep.Wrote, rep.Committed)
	// Output: [/run/keys/db] true
}

// The receiver travels in single quotes (ssh.Script), which fish, as the
// host's login shell, reads too, but with two backslash sequences of its
// own: the script must have neither.
func TestReceiverFishQuotes(t *testing.T) {
	for name, script := range map[string]string{"receiver.sh": receiverScript, "units.sh": unitsScript} {
		for _, seq := range []string{`\\`, `\'`} {
			if strings.Contains(script, seq) {
				t.Errorf("%s has %s, which fish's single quotes change", name, seq)
			}
		}
		if !strings.HasPrefix(script, "#!/bin/sh\n") {
			t.Errorf("%s does not start with its shebang", name)
		}
	}
}

// Another process creates a missing parent between the receiver's look at
// the path and its mkdir (deploy-flake creating /var/src while
// deploy-secrets writes below it, in the same run): the receiver looks at
// the directory it found and goes on. A mkdir that fails for another reason
// still stops the session with mkdir's own message.
func TestReceiverParentCreatedMeanwhile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("root creates the missing directories itself only when the receiver runs as root")
	}
	realMkdir, err := exec.LookPath("mkdir")
	if err != nil {
		t.Skip(err)
	}
	for _, c := range []struct {
		name, wrapper string
		ok            bool
	}{
		// Creates the directory first, as the other process would, then
		// runs the real mkdir, which fails: it exists.
		{"raced", `for a; do last=$a; done; ` + realMkdir + ` -p -- "$last"; exec ` + realMkdir + ` "$@"`, true},
		{"failing", `echo "mkdir: cannot create directory: No space left on device" >&2; exit 1`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := t.TempDir()
			if err := os.WriteFile(bin+"/mkdir", []byte("#!/bin/sh\n"+c.wrapper+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			eachShell(t, func(t *testing.T, sh []string) {
				dir := t.TempDir()
				v := Value{secret(dir+"/var/src/keys/k", "0400"), []byte("value")}
				cmd := exec.Command(sh[0], append(sh[1:], ReceiverArgv()[1:]...)...)
				cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
				cmd.Stdin = bytes.NewReader(encode(t, &Stream{Values: []Value{v}}))
				var out, errOut bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errOut
				err := cmd.Run()
				if !c.ok {
					if err == nil || !strings.Contains(errOut.String(), "No space left on device") ||
						!strings.Contains(errOut.String(), dir+"/var: cannot create the directory") {
						t.Fatalf("want mkdir's message and the directory named; got %v\n%s", err, errOut.String())
					}
					if _, err := os.Stat(v.Secret.Path); err == nil {
						t.Error("the secret was written")
					}
					return
				}
				if err != nil {
					t.Fatalf("receiver: %v\n%s", err, errOut.String())
				}
				if got, _ := os.ReadFile(v.Secret.Path); string(got) != "value" {
					t.Errorf("secret: %q", got)
				}
				rep, err := ParseReport(out.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				// The other process made them: they are not the session's
				// to record (nor to remove later).
				if !rep.Committed || len(rep.CreatedDirs) != 0 {
					t.Errorf("report: %+v", rep)
				}
			})
		})
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// Values sent as text are read and written by the shell's builtins: no
// program gets one in its argv, and none is started for them. The
// programs printf and print, first in PATH, fail the test if a shell
// starts them; a head there counts the values copied as bytes.
func TestReceiverTextValues(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		dir := t.TempDir()
		bin := filepath.Join(dir, "bin")
		os.Mkdir(bin, 0o755)
		calls := filepath.Join(dir, "calls")
		realHead, err := exec.LookPath("head")
		if err != nil {
			t.Fatal(err)
		}
		for name, script := range map[string]string{
			"printf": "echo printf >> " + calls + "\nexit 1\n",
			"print":  "echo print >> " + calls + "\nexit 1\n",
			"head":   "echo head >> " + calls + "\nexec " + realHead + " \"$@\"\n",
		} {
			if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		text := [][]byte{
			[]byte("hunter2\n"), []byte("no newline"), []byte("\n"), []byte("\n\nblank lines\n\n"),
			[]byte("  leading and trailing  \t"), []byte("back\\slash\\n\\\\ and \\"), []byte("-n"), []byte("-e\n"),
			[]byte("%s %d %% %b\n"), []byte("cr\r\nlf\n"), []byte("\xff\xfe bytes \x80 é 日本\n"),
			[]byte("-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----\n"), []byte("$(touch " + dir + "/canary) `x` $HOME"),
			bytes.Repeat([]byte("x"), maxText),
		}
		binary := [][]byte{[]byte("nul\x00byte\n"), bytes.Repeat([]byte("y"), maxText+1)}
		var values []Value
		for i, d := range append(append([][]byte{}, text...), binary...) {
			values = append(values, Value{secret(fmt.Sprintf("%s/keys/%02d", dir, i), "0400"), d})
		}
		r := &receiver{cmd: exec.Command(sh[0], append(sh[1:], ReceiverArgv()[1:]...)...)}
		r.cmd.Dir = dir
		r.cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.err
		r.cmd.Stdin = bytes.NewReader(encode(t, &Stream{Values: values}))
		if err := r.cmd.Run(); err != nil {
			t.Fatalf("receiver: %v\n%s", err, r.err.String())
		}
		for _, v := range values {
			got, err := os.ReadFile(v.Secret.Path)
			if err != nil && os.IsPermission(err) {
				t.Skip("the files are unreadable to this user")
			}
			if err != nil || !bytes.Equal(got, v.Data) {
				t.Errorf("%s: got %q (%v), want %q", v.Secret.Path, got, err, v.Data)
			}
		}
		log, _ := os.ReadFile(calls)
		if strings.Contains(string(log), "print") {
			t.Fatalf("a printf or print program was started, with a value in its argv: %q", log)
		}
		if _, err := os.Stat(dir + "/canary"); err == nil {
			t.Error("a value ran as a command")
		}
		// busybox sh runs its own head, whatever PATH says.
		if n := strings.Count(string(log), "head"); sh[0] != "busybox" && n != len(binary) {
			t.Errorf("head started %d times, want %d (once per value sent as bytes)", n, len(binary))
		}
	})
}

func TestTextLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		text bool
	}{
		{"", 0, true}, {"a", 1, true}, {"a\n", 1, true}, {"a\nb", 2, true}, {"\n\n", 2, true},
		{"a\x00", 0, false}, {strings.Repeat("x", maxText), 1, true}, {strings.Repeat("x", maxText+1), 0, false},
	} {
		if n, ok := textLines([]byte(c.in)); n != c.n || ok != c.text {
			t.Errorf("textLines(%q) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.text)
		}
	}
}
