package sudopw

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The feeder puts the password first on the command's input, then its own
// input; only the run's user gets it from the socket.
func TestServeAndFeed(t *testing.T) {
	dir := t.TempDir()
	srv, err := Serve(dir, []byte("pa ss'w\"rd"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if fi, err := os.Stat(Socket(dir)); err != nil || fi.Mode().Perm() != 0o600 || !Available(dir) {
		t.Fatalf("socket: %v %v", fi.Mode(), err)
	}
	var out, errOut bytes.Buffer
	code := Feed(dir, []string{"cat"}, strings.NewReader("the rest\n"), &out, &errOut)
	if code != 0 || out.String() != "pa ss'w\"rd\nthe rest\n" {
		t.Errorf("exit %d: %q %s", code, out.String(), errOut.String())
	}
	if code := Feed(dir, []string{"sh", "-c", "exit 7"}, nil, &out, &errOut); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	srv.Close()
	errOut.Reset()
	if code := Feed(dir, []string{"cat"}, nil, &out, &errOut); code != 255 || !strings.Contains(errOut.String(), "the run's sudo password") {
		t.Errorf("closed server: %d %s", code, errOut.String())
	}
}

// Script against a stand-in sudo that reads its password from stdin one
// byte at a time, as sudo -S does: the right password runs the command
// with the rest of the input; a wrong one runs nothing and consumes none
// of the command's input; a sudo without password (NOPASSWD) gets the
// input without the password line.
func TestScript(t *testing.T) {
	dir := t.TempDir()
	fake := dir + "/fakesudo"
	os.WriteFile(fake, []byte(`#!/bin/bash
nopasswd=$NOPASSWD
if [ "$1" = -n ]; then [ -n "$nopasswd" ]; exit; fi
if [ "$1" != -S ]; then [ -n "$nopasswd" ] || exit 9; exec "$@"; fi
shift 4 # -S -k -p ''
IFS= read -r p
[ "$p" = secret ] || { echo "Sorry, try again." >&2; exit 1; }
exec "$@"
`), 0o755)
	run := func(input string, nopasswd bool) (string, string, error) {
		argv := Argv(fake, nil, []string{"sh", "-c", "echo ran; cat"})
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = strings.NewReader(input)
		if nopasswd {
			cmd.Env = append(os.Environ(), "NOPASSWD=1")
		}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		return o.String(), e.String(), err
	}
	if out, e, err := run("secret\nline1\nline2\n", false); err != nil || out != "ran\nline1\nline2\n" {
		t.Errorf("right password: %q %q %v", out, e, err)
	}
	if out, e, err := run("wrong\nline1\n", false); err == nil || out != "" || !strings.Contains(e, "sudo refused the password") {
		t.Errorf("wrong password: %q %q %v", out, e, err)
	}
	if out, e, err := run("secret\nline1\n", true); err != nil || out != "ran\nline1\n" {
		t.Errorf("NOPASSWD: %q %q %v", out, e, err)
	}
}
