package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// passStore is a throwaway password store with its own GPG key, so that
// the default secret command, "pass <name>", runs for real.
type passStore struct {
	t   *testing.T
	env []string
}

func newPassStore(t *testing.T) *passStore {
	t.Helper()
	if _, err := exec.LookPath("pass"); err != nil {
		t.Skip("e2e: pass is not installed (apt-get install pass)")
	}
	dir := t.TempDir()
	gnupg := filepath.Join(dir, "gnupg")
	os.Mkdir(gnupg, 0o700)
	p := &passStore{t: t, env: []string{
		"GNUPGHOME=" + gnupg,
		"PASSWORD_STORE_DIR=" + filepath.Join(dir, "store"),
	}}
	p.cmd(nil, "gpg", "--batch", "--passphrase", "", "--quick-gen-key", "lollypops-test@example.invalid", "default", "default", "never")
	p.cmd(nil, "pass", "init", "lollypops-test@example.invalid")
	t.Cleanup(func() {
		c := exec.Command("gpgconf", "--kill", "gpg-agent")
		c.Env = append(os.Environ(), p.env...)
		c.Run()
	})
	return p
}

func (p *passStore) cmd(stdin []byte, args ...string) {
	p.t.Helper()
	c := exec.Command(args[0], args[1:]...)
	c.Env = append(os.Environ(), p.env...)
	c.Stdin = bytes.NewReader(stdin)
	if out, err := c.CombinedOutput(); err != nil {
		p.t.Fatalf("%q: %v\n%s", args, err, out)
	}
}

// insert stores value (multi-line, exact) under name.
func (p *passStore) insert(name string, value []byte) {
	p.t.Helper()
	p.cmd(value, "pass", "insert", "--multiline", "--force", name)
}
