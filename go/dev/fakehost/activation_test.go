package fakehost

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond every 20ms until it holds or 30s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// httpGet returns the status and body of GET http://127.0.0.1:<port>/;
// status 0 when nothing answers.
func httpGet(t *testing.T, port int) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestActivationSupport covers what safe activation relies on: systemd-run
// (transient units detached from the ssh session), a web service that
// belongs to the system, sudo with a password, and reboots from inside.
func TestActivationSupport(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip("fakehost: " + err.Error())
	}
	for _, tool := range []string{"sudo", "busybox"} {
		if _, err := lookTool(tool); err != nil {
			t.Skip("fakehost: " + tool + " is not installed")
		}
	}
	ctx := context.Background()
	f, err := New(ctx, t.TempDir(), []HostSpec{{Name: "act1", HTTP: true, Users: []UserSpec{
		{Name: "pw", SudoPassword: "pass word'1"}, {Name: "plain"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h := f.Host("act1")
	unitState := func(unit string) string {
		out, _ := h.Exec(ctx, "systemctl", "is-active", unit)
		return strings.TrimSpace(string(out))
	}

	t.Run("systemd-run detached", func(t *testing.T) {
		out, code := sshRun(t, f, "act1", `systemd-run --unit=t1 --description='a test' -E FOO=bar --collect sh -c 'echo "out $FOO $PATH"; echo err >&2; exec sleep 600'`)
		if code != 0 || out != "Running as unit: t1.service\n" {
			t.Fatalf("exit %d: %q", code, out)
		}
		if s := unitState("t1"); s != "active" {
			t.Fatalf("is-active t1: %q", s)
		}
		// A child of PID 1, in a session of its own, stdin /dev/null.
		pid := strings.TrimSpace(execOut(t, h, "cat /run/fakehost/units/t1.service/main-pid"))
		got := execOut(t, h, "ps -o ppid=,sid=,comm= -p "+pid+"; readlink /proc/"+pid+"/fd/0")
		if f := strings.Fields(got); len(f) != 4 || f[0] != "1" || f[1] != pid || f[2] != "sleep" || f[3] != "/dev/null" {
			t.Fatalf("unit process: %q (pid %s)", got, pid)
		}
		waitFor(t, "the unit's log", func() bool {
			return strings.Contains(execOut(t, h, "journalctl -u t1 --no-pager"), "err")
		})
		if got := execOut(t, h, "journalctl -u t1.service"); got != "out bar /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nerr\n" {
			t.Errorf("journal: %q", got)
		}
		// The name is taken while the unit runs.
		out, code = sshRun(t, f, "act1", "systemd-run -u t1 true")
		if code != 1 || out != "Failed to start transient service unit: Unit t1.service was already loaded or has a fragment file.\n" {
			t.Errorf("second t1: exit %d: %q", code, out)
		}
		// Neither the sessions nor sshd matter to it.
		if err := h.KillSessions(); err != nil {
			t.Fatal(err)
		}
		if err := h.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		if err := h.StartSSHD(); err != nil {
			t.Fatal(err)
		}
		if s := unitState("t1"); s != "active" {
			t.Fatalf("after KillSessions and an sshd restart: %q", s)
		}
		if got := execOut(t, h, "systemctl status t1 | head -4"); !strings.HasPrefix(got, "● t1.service - a test\n") ||
			!strings.Contains(got, "Active: active (running)") {
			t.Errorf("status: %q", got)
		}
		// stop kills the unit's processes.
		out, code = sshRun(t, f, "act1", "systemctl stop t1; systemctl is-active t1")
		if code != 3 || out != "inactive\n" {
			t.Errorf("stop: exit %d: %q", code, out)
		}
		if got := execOut(t, h, "ps -o pid= -p "+pid+" || echo gone"); got != "gone\n" {
			t.Errorf("the unit's process survived stop: %q", got)
		}
	})

	t.Run("systemd-run wait", func(t *testing.T) {
		out, code := sshRun(t, f, "act1", `echo hi | systemd-run --wait --pipe --quiet --collect --service-type=exec sh -c 'cat; echo "$FOO"; exit 7'`)
		if code != 7 || out != "hi\n\n" {
			t.Errorf("exit %d: %q", code, out)
		}
		out, code = sshRun(t, f, "act1", `cd /tmp && FOO=x systemd-run -E FOO --wait -P --same-dir -u w0 sh -c 'pwd; echo "$FOO"'`)
		// "Running as unit" (stderr) and the unit's output (stdout) race:
		// it may come between the unit's two lines.
		lines := strings.Split(out, "\n")
		pwd, foo := slices.Index(lines, "/tmp"), slices.Index(lines, "x")
		if code != 0 || pwd < 0 || foo < pwd || !strings.Contains(out, "Running as unit: w0.service\n") ||
			!strings.Contains(out, "Finished with result: success\nMain processes terminated with: code=exited/status=0\n") {
			t.Errorf("exit %d: %q", code, out)
		}
		out, code = sshRun(t, f, "act1", "systemd-run --wait -q nonexistent-program")
		if code != 1 || out != "Failed to find executable nonexistent-program: No such file or directory\n" {
			t.Errorf("exit %d: %q", code, out)
		}
		// --wait in a session that dies: the unit goes on and ends.
		cmd := exec.Command("ssh", "-F", f.SSHConfig, "act1",
			`systemd-run --wait --pipe -u w1 sh -c 'while [ ! -e /root/go ]; do sleep 0.05; done; echo done >/root/w1.done'`)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "unit w1", func() bool { return unitState("w1") == "active" })
		if err := h.KillSessions(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatal("ssh survived KillSessions")
		}
		execOut(t, h, "touch /root/go")
		waitFor(t, "w1's end", func() bool {
			s := unitState("w1")
			if s == "failed" {
				out, _ := h.Exec(ctx, "systemctl", "status", "w1")
				t.Fatalf("w1 failed: %s\n%s", out, logTail(h.LogFile(), 0))
			}
			return s == "inactive"
		})
		if got := execOut(t, h, "cat /root/w1.done"); got != "done\n" {
			t.Errorf("w1: %q", got)
		}
	})

	t.Run("systemd-run failed units", func(t *testing.T) {
		if out, code := sshRun(t, f, "act1", "systemd-run -q -u f1 false"); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		waitFor(t, "f1 failed", func() bool { return unitState("f1") == "failed" })
		// Without --collect a failed unit keeps its name.
		out, code := sshRun(t, f, "act1", "systemd-run -q -u f1 true; systemctl reset-failed f1; systemctl is-active f1; systemd-run -q -u f1 true")
		if code != 0 || out != "Failed to start transient service unit: Unit f1.service was already loaded or has a fragment file.\ninactive\n" {
			t.Errorf("exit %d: %q", code, out)
		}
		// A oneshot unit: systemd-run waits for its end.
		out, code = sshRun(t, f, "act1", "systemd-run -q --service-type=oneshot -u o1 false")
		if code != 1 || !strings.HasPrefix(out, "Job for o1.service failed because the control process exited with error code.\n") {
			t.Errorf("oneshot: exit %d: %q", code, out)
		}
	})

	t.Run("systemd-run needs root", func(t *testing.T) {
		out, code := sshRun(t, f, "plain@act1", "systemd-run --wait true")
		if code != 1 || out != "Failed to start transient service unit: Access denied\n" {
			t.Errorf("plain: exit %d: %q", code, out)
		}
		out, code = sshRun(t, f, "pw@act1", `printf '%s\n' "pass word'1" | sudo -S -p '' systemd-run --wait --pipe -q id -un`)
		if code != 0 || out != "root\n" {
			t.Errorf("sudo: exit %d: %q", code, out)
		}
	})

	t.Run("sudo password", func(t *testing.T) {
		for _, c := range []struct {
			name, script, want string
			code               int
		}{
			{"no password", "sudo -n true", "sudo: a password is required\n", 1},
			{"id", "id -nG", "pw wheel\n", 0},
			{"prompt on stderr", `printf '%s\n' "pass word'1" | sudo -S id -un`, "[sudo] password for pw: root\n", 0},
			{"wrong", "echo nope | sudo -S -p '' true",
				"Sorry, try again.\n\nsudo: no password was provided\nsudo: 1 incorrect password attempt\n", 1},
			// Without a tty the record belongs to the parent process: the
			// same shell reuses it, another process does not, and sudo -S
			// with a valid record leaves the password on the command's stdin.
			{"timestamp", `printf '%s\n' "pass word'1" | sudo -S -p '' true; sudo -n echo same; sh -c 'sudo -n echo other; :'; echo line | sudo -S -p '' cat`,
				"same\nsudo: a password is required\nline\n", 0},
			{"-k", `printf '%s\n' "pass word'1" | sudo -S -p '' true; sudo -k; sudo -n true`, "sudo: a password is required\n", 1},
			{"-k -S asks", `printf '%s\n' "pass word'1" | sudo -S -p '' true; printf '%s\nline\n' "pass word'1" | sudo -k -S -p '' cat`, "line\n", 0},
			{"new session", "sudo -n true", "sudo: a password is required\n", 1},
		} {
			out, code := sshRun(t, f, "pw@act1", c.script)
			if code != c.code || out != c.want {
				t.Errorf("%s: exit %d, %q; want %d, %q", c.name, code, out, c.code, c.want)
			}
		}
		if got := execOut(t, h, "grep -c '^%wheel ALL=(ALL:ALL) SETENV: ALL$' /etc/sudoers; grep -c NOPASSWD /etc/sudoers || true"); got != "1\n0\n" {
			t.Errorf("sudoers: %q", got)
		}
	})

	flake := addFlake(t, map[string]System{
		"act1":      {},
		"act1-ok":   {HTTP: HTTPHealthy},
		"act1-ok2":  {HTTP: HTTPHealthy, Kernel: "k2"},
		"act1-bad":  {HTTP: HTTPUnhealthy},
		"act1-none": {Kernel: "k3"},
	})
	if out, err := nixCopy(f, "ssh://act1", flake); err != nil {
		t.Fatalf("nix copy: %v: %s", err, out)
	}
	ref := func(name string) string { return "path:" + flake + "#" + name }
	port := h.HTTPPort()
	if port == 0 {
		t.Fatal("no HTTP port")
	}

	t.Run("http service", func(t *testing.T) {
		if code, body := httpGet(t, port); code != 0 {
			t.Fatalf("the first generation has no web service, but %d %q", code, body)
		}
		for _, c := range []struct {
			name   string
			code   int
			prefix string
			units  string
		}{
			{"act1-ok", 200, "healthy ", "the following new units were started: httpd.service"},
			{"act1-ok2", 200, "healthy ", "stopping the following units: httpd.service"},
			{"act1-bad", 500, "unhealthy ", "starting the following units: httpd.service"},
			{"act1-none", 0, "", "stopping the following units: httpd.service"},
		} {
			out, code := sshRun(t, f, "act1", "nixos-rebuild switch --flake "+ref(c.name))
			if code != 0 || !strings.Contains(out, c.units) {
				t.Fatalf("%s: exit %d: %s", c.name, code, out)
			}
			sys := currentSystem(t, h)
			status, body := httpGet(t, port)
			if status != c.code || (c.code != 0 && body != c.prefix+sys+"\n") {
				t.Errorf("%s: GET / = %d %q", c.name, status, body)
			}
			want := "active"
			if c.code == 0 {
				want = "inactive"
			}
			if s := unitState("httpd"); s != want {
				t.Errorf("%s: httpd is %s", c.name, s)
			}
		}
	})

	// What a deployer restarting a secret's units sees: systemd's
	// try-restart and reload.
	t.Run("try-restart and reload", func(t *testing.T) {
		if out, code := sshRun(t, f, "act1", "nixos-rebuild switch --flake "+ref("act1-ok")); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		pid := func() string { return strings.TrimSpace(execOut(t, h, "cat /run/fakehost/httpd.main-pid")) }
		before := pid()
		if out, code := sshRun(t, f, "act1", "systemctl try-restart -- httpd.service"); code != 0 || out != "" {
			t.Fatalf("try-restart: exit %d: %s", code, out)
		}
		restarted := pid()
		if restarted == before || restarted == "" {
			t.Errorf("httpd's main PID %s, %s before the restart", restarted, before)
		}
		if status, _ := httpGet(t, port); status != 200 {
			t.Errorf("GET / after the restart: %d", status)
		}
		if out, code := sshRun(t, f, "act1", "systemctl reload httpd sshd.service"); code != 0 || out != "" {
			t.Fatalf("reload: exit %d: %s", code, out)
		}
		if p := pid(); p != restarted {
			t.Errorf("the reload restarted httpd: %s, %s before", p, restarted)
		}
		if got := execOut(t, h, "cat /run/fakehost/units/httpd.service/reloads /run/fakehost/units/sshd.service/reloads"); got != "x\nx\n" {
			t.Errorf("reloads: %q", got)
		}
		for _, c := range []struct {
			cmd, out string
			code     int
		}{
			{"systemctl try-restart nosuch.service", "Failed to try-restart nosuch.service: Unit nosuch.service not found.\n", 5},
			{"systemctl reload nosuch", "Failed to reload nosuch.service: Unit nosuch.service not found.\n", 5},
			{"systemd-run -q -u tr1 sleep 600; systemctl reload tr1", "Failed to reload tr1.service: Job type reload is not applicable for unit tr1.service.\n", 3},
			{"systemctl try-restart tr1; systemctl stop tr1", "Failed to try-restart tr1.service: the fake host cannot restart transient units\n", 0},
			{"su -s /bin/sh -c 'systemctl try-restart httpd' " + "nobody", "Failed to try-restart httpd.service: Access denied\n", 1},
		} {
			if out, code := sshRun(t, f, "act1", c.cmd); code != c.code || out != c.out {
				t.Errorf("%s: exit %d: %q, want %d %q", c.cmd, code, out, c.code, c.out)
			}
		}
		// A system without the web service: httpd is not there.
		if out, code := sshRun(t, f, "act1", "nixos-rebuild switch --flake "+ref("act1-none")); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		if out, code := sshRun(t, f, "act1", "systemctl try-restart httpd.service"); code != 5 ||
			out != "Failed to try-restart httpd.service: Unit httpd.service not found.\n" {
			t.Errorf("try-restart without httpd: exit %d: %q", code, out)
		}
	})

	t.Run("reboot", func(t *testing.T) {
		// Running act1-ok, booting act1-bad next.
		for _, c := range []string{"switch --flake " + ref("act1-ok"), "boot --flake " + ref("act1-bad")} {
			if out, code := sshRun(t, f, "act1", "nixos-rebuild "+c); code != 0 {
				t.Fatalf("%s: exit %d: %s", c, code, out)
			}
		}
		ok, bad := currentSystem(t, h), bootDefault(t, h)
		if ok == bad {
			t.Fatal("same systems")
		}
		execOut(t, h, "echo k >/run/keys/k")
		if out, code := sshRun(t, f, "act1", "systemd-run -q -u long sleep 600"); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		boots, pid := h.Boots(), h.Pid()
		session := exec.Command("ssh", "-F", f.SSHConfig, "act1", "echo up; exec sleep 600")
		stdout, err := session.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := session.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := readLine(stdout); err != nil || line != "up" {
			t.Fatalf("session: %q, %v", line, err)
		}
		// The deployer's view: the reboot ends the sessions ...
		sshRun(t, f, "act1", "systemctl reboot")
		err = session.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 255 {
			t.Errorf("the session ended with %v, want ssh's 255", err)
		}
		// ... then ssh works again, with the same host key (known_hosts is
		// checked), and the boot loader's default runs. The boot starts the
		// units as systemd does, sshd among them: httpd may still be
		// starting when ssh first answers.
		var out string
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("the last answer after the reboot: %q", out)
			}
		})
		waitFor(t, "ssh after the reboot, and httpd started", func() bool {
			o, _ := ssh(t, f, "act1", "readlink /run/current-system /run/booted-system; ls /run/keys; systemctl is-active long httpd")
			out = string(o)
			return strings.HasSuffix(out, "\nactive\n")
		})
		if out != bad+"\n"+bad+"\ninactive\nactive\n" {
			t.Errorf("after the reboot: %q", out)
		}
		if h.Boots() != boots+1 || h.Pid() == pid || h.Rebooting() {
			t.Errorf("boots %d -> %d, pid %d -> %d, rebooting %v", boots, h.Boots(), pid, h.Pid(), h.Rebooting())
		}
		// Active is not listening yet (a simple service, as systemd's).
		var status int
		var body string
		waitFor(t, "httpd to answer after the reboot", func() bool {
			status, body = httpGet(t, port)
			return status != 0
		})
		if status != 500 || body != "unhealthy "+bad+"\n" {
			t.Errorf("GET / after the reboot: %d %q", status, body)
		}
	})

	t.Run("reboot hangs", func(t *testing.T) {
		h.HangNextBoot()
		sshRun(t, f, "act1", "reboot")
		waitFor(t, "the host down", func() bool { return h.Pid() == 0 && !h.Rebooting() })
		if out, code := sshRun(t, f, "act1", "true"); code != 255 || !strings.Contains(out, "Connection refused") {
			t.Errorf("ssh to a hung host: exit %d: %q", code, out)
		}
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
		if out, code := sshRun(t, f, "act1", "true"); code != 0 {
			t.Errorf("after Start: exit %d: %q", code, out)
		}
	})

	t.Run("reboot needs root", func(t *testing.T) {
		out, code := sshRun(t, f, "plain@act1", "systemctl reboot")
		if code != 1 || !strings.Contains(out, "Access denied") || h.Rebooting() {
			t.Errorf("exit %d: %q", code, out)
		}
	})
}

// readLine reads one line from r.
func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}
