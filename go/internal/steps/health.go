package steps

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// CheckFailed is a health check that failed every attempt.
type CheckFailed struct {
	Name     string
	Attempts int
	Reason   string
}

func (e *CheckFailed) Error() string {
	return fmt.Sprintf("health check %q failed (%d attempts): %s", e.Name, e.Attempts, e.Reason)
}

// healthChecks runs the host's health checks, in name order, each until it
// passes or its attempts are spent, and returns the first that failed.
func (e *Env) healthChecks(ctx context.Context, c *ssh.Client) error {
	checks := e.Host.Deployment.HealthChecks
	if len(checks) > 0 {
		defer e.stage("health checks")()
	}
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		hc := checks[n]
		attempts := hc.Retries + 1
		var reason string
		for i := 1; i <= attempts; i++ {
			err := e.check(ctx, c, &hc)
			if err == nil {
				e.printf("health check %q passed", n)
				reason = ""
				break
			}
			reason = err.Error()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if i < attempts {
				e.printf("health check %q: %s; again in %ds (%d of %d)", n, reason, hc.Interval, i, attempts)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(hc.Interval) * time.Second):
				}
			}
		}
		if reason != "" {
			return &CheckFailed{Name: n, Attempts: attempts, Reason: reason}
		}
	}
	return nil
}

// check runs one attempt of a check.
func (e *Env) check(ctx context.Context, c *ssh.Client, hc *config.HealthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(hc.Timeout)*time.Second)
	defer cancel()
	if hc.Cmd != nil {
		argv, err := e.remote(c, "sh", "-c", *hc.Cmd)
		if err != nil {
			return err
		}
		var out strings.Builder
		err = e.Runner.Run(ctx, execx.Cmd{Argv: argv, Stdout: &out, Stderr: &out})
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("no answer within %ds", hc.Timeout)
		}
		if err != nil {
			if last := lastLine(out.String()); last != "" {
				return fmt.Errorf("%v: %s", err, last)
			}
			return err
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *hc.URL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("GET %s: no answer within %ds", *hc.URL, hc.Timeout)
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != hc.Status {
		return fmt.Errorf("GET %s: %s, want %d", *hc.URL, resp.Status, hc.Status)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return l
}
