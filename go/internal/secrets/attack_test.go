package secrets

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The attacker is nobody (uid 65534), an unprivileged user of the host who
// owns a directory a secret goes to, as users own their homes, and races
// the receiver, which runs as root.
const nobody = 65534

// attackScene is a directory tree as a host has it: base (root, 0755) with
// home (nobody's, 0700, like a home directory) and victim (root's, 0700,
// holding a canary file), which the attacker wants root to write into.
type attackScene struct {
	base, home, victim, canary string
}

func newAttackScene(t *testing.T) *attackScene {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("attacker tests: need root (the receiver runs as root on the host)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("attacker tests: setpriv (util-linux) is not installed")
	}
	base := t.TempDir()
	// t.TempDir's parent is root's 0700: the attacker must reach base.
	must(t, os.Chmod(filepath.Dir(base), 0o755))
	must(t, os.Chmod(base, 0o755))
	s := &attackScene{base: base, home: base + "/home", victim: base + "/victim"}
	s.canary = s.victim + "/canary"
	must(t, os.Mkdir(s.home, 0o700))
	must(t, os.Chown(s.home, nobody, nobody))
	must(t, os.Mkdir(s.victim, 0o700))
	must(t, os.WriteFile(s.canary, []byte("canary"), 0o600))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// asNobody runs a shell command as the attacker.
func asNobody(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %s: %v: %s", script, err, out)
	}
}

// untouched fails the test if root wrote, created or chowned anything in
// the victim directory.
func (s *attackScene) untouched(t *testing.T) {
	t.Helper()
	ents, _ := os.ReadDir(s.victim)
	if len(ents) != 1 || ents[0].Name() != "canary" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the victim directory holds %q: root wrote there", names)
	}
	st, err := os.Stat(s.canary)
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("canary is now uid %d mode %o", sys.Uid, st.Mode().Perm())
	}
	if b, _ := os.ReadFile(s.canary); string(b) != "canary" {
		t.Errorf("canary now holds %q", b)
	}
	if st, _ := os.Stat(s.victim); st.Sys().(*syscall.Stat_t).Uid != 0 || st.Mode().Perm() != 0o700 {
		t.Errorf("victim directory is now uid %d mode %o", st.Sys().(*syscall.Stat_t).Uid, st.Mode().Perm())
	}
}

func nobodySecret(p, mode string) *Value {
	s := secret(p, mode)
	s.Owner, s.Group = "nobody", "nogroup"
	return &Value{Secret: s}
}

func ownerOf(t *testing.T, p string) (uid, gid uint32, mode uint32) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return sys.Uid, sys.Gid, modeBits(st.Mode())
}

// Root does not write a secret of another owner into a directory a user
// controls: the session fails before anything is written, naming the
// directory.
func TestAttackerRootSecretInUserDirectory(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		s := newAttackScene(t)
		v := Value{secret(s.home+"/key", "0400"), []byte("root's secret")}
		other := Value{secret(s.base+"/keys/other", "0400"), []byte("x")}
		_, errOut, err := receive(t, sh, encode(t, &Stream{Values: []Value{other, v}}))
		if err == nil || !strings.Contains(errOut, s.home+": owned by uid 65534, who could redirect the writes of root there") {
			t.Fatalf("err=%v stderr=%q", err, errOut)
		}
		for _, p := range []string{v.Secret.Path, other.Secret.Path} {
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Errorf("%s was written", p)
			}
		}
		if l := leftovers(t, s.base); len(l) > 0 {
			t.Errorf("staging left: %v", l)
		}
	})
}

// The owner's secret in the owner's own directory is written by the
// owner's processes: with the exact bytes, mode and group, and the owner's
// symlinks cannot make root write anywhere.
func TestAttackerOwnDirectoryWrittenAsOwner(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		s := newAttackScene(t)
		// Symlinks the attacker placed: a whole directory pointing at the
		// victim, and a destination file pointing at the canary.
		asNobody(t, "ln -s "+s.victim+" "+s.home+"/redirected && mkdir "+s.home+"/s && ln -s "+s.canary+" "+s.home+"/s/dest")
		good := nobodySecret(s.home+"/s/new/deeper/key", "0750")
		good.Data = []byte("the owner's secret\n")
		dest := nobodySecret(s.home+"/s/dest", "0400")
		dest.Data = []byte("replaces the link, not the canary")
		out, errOut, err := receive(t, sh, encode(t, &Stream{Values: []Value{*good, *dest}}))
		if err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		for _, v := range []*Value{good, dest} {
			b, err := os.ReadFile(v.Secret.Path)
			if err != nil || string(b) != string(v.Data) {
				t.Errorf("%s: %q %v", v.Secret.Path, b, err)
			}
			uid, gid, mode := ownerOf(t, v.Secret.Path)
			if uid != nobody || gid != nobody || mode != FileMode(v.Secret.Mode) {
				t.Errorf("%s: %d:%d %04o", v.Secret.Path, uid, gid, mode)
			}
		}
		// Directories created below the owner's directory are the owner's.
		if uid, _, mode := ownerOf(t, s.home+"/s/new/deeper"); uid != nobody || mode != 0o711 {
			t.Errorf("created directory: uid %d mode %o", uid, mode)
		}
		if rep, _ := ParseReport([]byte(out)); !rep.Committed || len(rep.Wrote) != 2 {
			t.Errorf("report: %+v", rep)
		}
		s.untouched(t)

		// Through the redirected directory, the write is the owner's, and
		// the owner cannot write in the victim directory.
		bad := nobodySecret(s.home+"/redirected/key", "0400")
		bad.Data = []byte("must not land in the victim directory")
		_, errOut, err = receive(t, sh, encode(t, &Stream{Values: []Value{*bad}}))
		if err == nil {
			t.Fatal("the write through the attacker's symlink succeeded")
		}
		if !strings.Contains(errOut, "as nobody") && !strings.Contains(errOut, "as uid") {
			t.Errorf("stderr: %q", errOut)
		}
		s.untouched(t)
	})
}

// Pre-created staging names: the attacker sees the receiver start and
// plants ".lollypops-<pid>" (the old, predictable name) as a symlink to the
// victim directory before the stream arrives.
func TestAttackerPrecreatedStagingName(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		s := newAttackScene(t)
		asNobody(t, "mkdir "+s.home+"/s")
		r := startReceiver(t, sh, t.TempDir())
		plant := s.home + "/s/.lollypops-" + strconv.Itoa(r.cmd.Process.Pid)
		asNobody(t, "ln -s "+s.victim+" "+plant)
		v := nobodySecret(s.home+"/s/key", "0400")
		v.Data = []byte("secret")
		r.stdin.Write(encode(t, &Stream{Values: []Value{*v}}))
		if err := r.wait(); err != nil {
			t.Fatalf("%v: %s", err, r.err.String())
		}
		if b, _ := os.ReadFile(v.Secret.Path); string(b) != "secret" {
			t.Errorf("key: %q", b)
		}
		if l, err := os.Readlink(plant); err != nil || l != s.victim {
			t.Errorf("the planted link was touched: %q %v", l, err)
		}
		s.untouched(t)
	})
}

// A directory that users other than root can change is refused for root's
// writes, unless it is sticky (as /tmp), where only new names can be added
// by others and the receiver creates its own exclusively.
func TestAttackerWritableDirectories(t *testing.T) {
	eachShell(t, func(t *testing.T, sh []string) {
		s := newAttackScene(t)
		for _, c := range []struct {
			mode os.FileMode
			ok   bool
		}{{0o777, false}, {0o775, false}, {0o757, false}, {0o755, true}, {0o777 | os.ModeSticky, true}} {
			d := filepath.Join(s.base, "d"+strconv.FormatUint(uint64(modeBits(c.mode)), 8))
			must(t, os.Mkdir(d, 0o700))
			must(t, os.Chmod(d, c.mode))
			v := Value{secret(d+"/sub/key", "0400"), []byte("v")}
			_, errOut, err := receive(t, sh, encode(t, &Stream{Values: []Value{v}}))
			if c.ok && err != nil {
				t.Errorf("%04o: %v: %s", modeBits(c.mode), err, errOut)
			}
			if !c.ok && (err == nil || !strings.Contains(errOut, d+": writable by other users")) {
				t.Errorf("%04o: err=%v stderr=%q", modeBits(c.mode), err, errOut)
			}
			if _, err := os.Stat(v.Secret.Path); (err == nil) != c.ok {
				t.Errorf("%04o: written=%v", modeBits(c.mode), err == nil)
			}
		}
		// Root-owned symbolic links in trusted directories are followed (as
		// /var/run -> /run); the attacker's are not followed by root.
		must(t, os.Mkdir(s.base+"/real", 0o755))
		must(t, os.Symlink("real", s.base+"/alias"))
		v := Value{secret(s.base+"/alias/key", "0400"), []byte("via a root link")}
		if _, errOut, err := receive(t, sh, encode(t, &Stream{Values: []Value{v}})); err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		if b, _ := os.ReadFile(s.base + "/real/key"); string(b) != "via a root link" {
			t.Errorf("real/key: %q", b)
		}
		must(t, os.Mkdir(s.base+"/sticky", 0o700))
		must(t, os.Chmod(s.base+"/sticky", 0o777|os.ModeSticky))
		asNobody(t, "ln -s "+s.victim+" "+s.base+"/sticky/planted")
		v = Value{secret(s.base+"/sticky/planted/key", "0400"), []byte("v")}
		_, errOut, err := receive(t, sh, encode(t, &Stream{Values: []Value{v}}))
		if err == nil || !strings.Contains(errOut, "sticky/planted: owned by uid 65534") {
			t.Errorf("attacker's link in a sticky directory: err=%v stderr=%q", err, errOut)
		}
		s.untouched(t)
	})
}

// The attacker swaps a directory of theirs for a symlink to the victim
// directory and back, as fast as they can, while the receiver writes the
// attacker's secrets there again and again. Whatever wins a race, root
// never writes or chowns in the victim directory.
func TestAttackerRace(t *testing.T) {
	if testing.Short() {
		t.Skip("race: -short")
	}
	eachShell(t, func(t *testing.T, sh []string) {
		s := newAttackScene(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		swap := exec.CommandContext(ctx, "sh", "-c", `cd "$1" || exit 1
mkdir -p real
while :; do
  ln -sfn "$2" link.tmp && mv -fT link.tmp lollypops-secrets
  rm -f lollypops-secrets && mkdir -p real && ln -sfn real link.tmp && mv -fT link.tmp lollypops-secrets
  rm -f lollypops-secrets; mkdir lollypops-secrets 2>/dev/null; rmdir lollypops-secrets 2>/dev/null
done`, "swap", s.home, s.victim)
		// Its own process group: cancelling kills the loop's children too
		// (an ln or mkdir outliving the shell would race the test's
		// cleanup of the directory).
		swap.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}, Setpgid: true}
		swap.Cancel = func() error { return syscall.Kill(-swap.Process.Pid, syscall.SIGKILL) }
		must(t, swap.Start())
		time.Sleep(50 * time.Millisecond)
		if swap.ProcessState != nil {
			t.Fatal("the attacker's loop did not start")
		}
		defer swap.Wait()
		wrote := 0
		deadline := time.Now().Add(3 * time.Second)
		for i := 0; i < 30 && time.Now().Before(deadline); i++ {
			v := nobodySecret(s.home+"/lollypops-secrets/key", "0400")
			v.Data = []byte("race " + strconv.Itoa(i))
			root := Value{secret(s.base+"/keys/root-key", "0400"), []byte("root")}
			_, _, err := receive(t, sh, encode(t, &Stream{Values: []Value{root, *v}}))
			if err == nil {
				wrote++
			}
		}
		cancel()
		swap.Wait()
		s.untouched(t)
		t.Logf("%d sessions succeeded while the attacker swapped", wrote)
		// Nothing of root's is left in the attacker's directories.
		filepath.Walk(s.home, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Sys().(*syscall.Stat_t).Uid == 0 && !slices.Contains([]string{s.home}, p) {
				t.Errorf("root-owned %s in the attacker's directory", p)
			}
			return nil
		})
	})
}
