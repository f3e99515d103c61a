// Package taskrun runs a generated Taskfile with go-task, used as a
// library. It is the only package that imports go-task, whose Go API is
// not stable across releases: the exact version is pinned in go.mod, and
// everything that touches that API is here.
package taskrun

import (
	"github.com/lollypops/lollypops/go/internal/fault"

	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	task "github.com/go-task/task/v3"
	"github.com/go-task/task/v3/args"
	taskerrors "github.com/go-task/task/v3/errors"
	"github.com/go-task/task/v3/experiments"
	"github.com/go-task/task/v3/taskfile/ast"
)

// UsageError is a flag or argument lollypops cannot honour.
type UsageError struct {
	Msg    string
	Advice string
}

func (e *UsageError) Error() string    { return e.Msg }
func (e *UsageError) Hint() string     { return e.Advice }
func (e *UsageError) Kind() fault.Kind { return fault.Usage }

// Validate applies go-task's checks of flag combinations, and rejects the
// flags that make no sense for a generated Taskfile.
func (f *Flags) Validate() error {
	reject := func(flag string) error {
		return &UsageError{Msg: flag + " cannot be used with lollypops: its Taskfile is generated from the inventory",
			Advice: "the tasks are listed by lollypops --list-all; see lollypops --help"}
	}
	switch {
	case f.Taskfile != "":
		return reject("--taskfile")
	case f.Init:
		return reject("--init")
	case f.Global:
		return reject("--global")
	case f.Watch:
		return &UsageError{Msg: "--watch cannot be used with lollypops: its tasks have no sources to watch"}
	}
	for _, name := range RemoteFlags {
		if f.fs != nil && f.fs.Changed(name) {
			return &UsageError{Msg: "--" + name + " concerns remote Taskfiles, which lollypops never reads: it generates its Taskfile from the inventory",
				Advice: "lollypops --help lists the flags that apply"}
		}
	}
	switch {
	case f.Output != "group" && (f.OutputGroupBegin != "" || f.OutputGroupEnd != "" || f.OutputGroupErrorOnly):
		return &UsageError{Msg: "--output-group-begin, --output-group-end and --output-group-error-only need --output=group"}
	case f.List && f.ListAll:
		return &UsageError{Msg: "--list and --list-all cannot be used together"}
	case f.ListJSON && !f.List && !f.ListAll && (f.Dry || f.Summary || f.Status):
		return &UsageError{Msg: "--json applies to --list, --list-all and diff tasks"}
	case f.NoStatus && !f.ListJSON:
		return &UsageError{Msg: "--no-status only applies to --json with --list or --list-all"}
	case f.Nested && !f.ListJSON:
		return &UsageError{Msg: "--nested only applies to --json with --list or --list-all"}
	case f.Sort != "" && f.Sort != "none" && f.Sort != "default" && f.Sort != "alphanumeric":
		return &UsageError{Msg: fmt.Sprintf("--sort %q is not one of default, alphanumeric, none", f.Sort)}
	}
	f.resolveColor()
	return experiments.Validate()
}

// Listing reports whether the flags ask for a task list rather than a run.
func (f *Flags) Listing() bool { return f.List || f.ListAll }

// Var is a variable given on the command line as NAME=value.
type Var struct{ Name, Value string }

// ParseArgs splits the arguments before "--" into task names and
// variables, as the task CLI does.
func ParseArgs(argv []string) (calls []string, vars []Var) {
	cs, globals := args.Parse(argv...)
	for _, c := range cs {
		calls = append(calls, c.Task)
	}
	for name, v := range globals.All() {
		vars = append(vars, Var{Name: name, Value: fmt.Sprint(v.Value)})
	}
	return calls, vars
}

// Request is one go-task invocation.
type Request struct {
	Flags    *Flags
	Taskfile string // path of the generated Taskfile
	Dir      string // where tasks without their own dir run
	TempDir  string // go-task's temporary files, unless --temp-dir is given
	Calls    []string
	Vars     []Var
	PostDash []string // arguments after "--": {{.CLI_ARGS}}
	// ListWithoutEnv lists with an empty environment. go-task copies the
	// whole environment into every task it lists, to template its
	// description: with thousands of tasks that is most of a listing's
	// memory. Set it only when no description is a template.
	ListWithoutEnv bool
	Stdin          io.Reader
	Stdout         io.Writer
	Stderr         io.Writer
}

// TaskFailed is a task whose command failed.
type TaskFailed struct {
	Task     string
	ExitCode int // of the failing command
	Err      error
}

func (e *TaskFailed) Error() string { return fmt.Sprintf("task %q failed: %v", e.Task, e.Err) }

// ErrNoTasks is returned when a listing found no task to show.
var ErrNoTasks = errors.New("no tasks to list")

// Run runs go-task on the request's Taskfile.
func Run(ctx context.Context, r *Request) error {
	f := r.Flags
	if f.Experiments {
		for _, x := range experiments.List() {
			if x.Active() {
				fmt.Fprintf(r.Stdout, "* %s: %s\n", x.Name, x.String())
			}
		}
		return nil
	}
	if f.Dry {
		dw := &dryWriter{w: r.Stderr}
		defer dw.flush()
		dry := *r
		dry.Stderr = dw
		r = &dry
	}
	e := task.NewExecutor(r.options()...)
	if err := e.Setup(); err != nil {
		return err
	}
	if f.ClearCache {
		return os.RemoveAll(filepath.Join(e.TempDir.Remote, "remote"))
	}
	lo := task.NewListOptions(f.List, f.ListAll, f.ListJSON, f.NoStatus, f.Nested)
	if lo.ShouldListTasks() {
		if f.Silent {
			return e.ListTaskNames(f.ListAll)
		}
		if r.ListWithoutEnv {
			defer restoreEnv(os.Environ())
			os.Clearenv()
		}
		found, err := e.ListTasks(lo)
		if err == nil && !found {
			err = ErrNoTasks
		}
		return err
	}

	calls := make([]*task.Call, len(r.Calls))
	for i, c := range r.Calls {
		calls[i] = &task.Call{Task: c}
	}
	globals := ast.NewVars()
	for _, v := range r.Vars {
		globals.Set(v.Name, ast.Var{Value: v.Value})
	}
	e.Taskfile.Vars.Merge(globals, nil)
	quoted, err := args.ToQuotedString(r.PostDash)
	if err != nil {
		return err
	}
	special := ast.NewVars()
	special.Set("CLI_ARGS", ast.Var{Value: quoted})
	special.Set("CLI_ARGS_LIST", ast.Var{Value: r.PostDash})
	special.Set("CLI_FORCE", ast.Var{Value: f.Force || f.ForceAll})
	special.Set("CLI_SILENT", ast.Var{Value: f.Silent})
	special.Set("CLI_VERBOSE", ast.Var{Value: f.Verbose})
	special.Set("CLI_OFFLINE", ast.Var{Value: f.Offline})
	special.Set("CLI_ASSUME_YES", ast.Var{Value: f.AssumeYes})
	e.Taskfile.Vars.ReverseMerge(special, nil)

	if f.Status {
		err = e.Status(ctx, calls...)
	} else {
		err = e.Run(ctx, calls...)
	}
	return translate(err)
}

func (r *Request) options() []task.ExecutorOption {
	f := r.Flags
	tempDir := f.TempDir
	if tempDir == "" {
		tempDir = r.TempDir
	}
	dir := r.Dir
	if f.Dir != "" {
		dir = f.Dir
	}
	opts := []task.ExecutorOption{
		task.WithEntrypoint(r.Taskfile),
		task.WithDir(dir),
		task.WithTempDirPath(tempDir),
		task.WithForce(f.Force),
		task.WithForceAll(f.ForceAll),
		task.WithInsecure(f.Insecure),
		task.WithDownload(f.Download),
		task.WithOffline(f.Offline),
		task.WithTrustedHosts(f.TrustedHosts),
		task.WithTimeout(f.Timeout),
		task.WithCacheExpiryDuration(f.Expiry),
		task.WithRemoteCacheDir(f.RemoteCacheDir),
		task.WithCACert(f.CACert),
		task.WithCert(f.Cert),
		task.WithCertKey(f.CertKey),
		task.WithVerbose(f.Verbose),
		task.WithSilent(f.Silent),
		task.WithDisableFuzzy(f.DisableFuzzy),
		task.WithAssumeYes(f.AssumeYes),
		task.WithInteractive(f.Interactive),
		task.WithDry(f.Dry || f.Status),
		task.WithSummary(f.Summary),
		task.WithParallel(f.Parallel),
		task.WithColor(f.Color),
		task.WithConcurrency(f.Concurrency),
		task.WithInterval(f.Interval),
		task.WithOutputStyle(ast.Output{Name: f.Output, Group: ast.OutputGroup{
			Begin: f.OutputGroupBegin, End: f.OutputGroupEnd, ErrorOnly: f.OutputGroupErrorOnly}}),
		task.WithVersionCheck(true),
		task.WithFailfast(f.Failfast),
		task.WithStdin(r.Stdin),
		task.WithStdout(r.Stdout),
		task.WithStderr(r.Stderr),
	}
	switch f.Sort {
	case "alphanumeric":
		opts = append(opts, task.WithTaskSorter(alphanumeric))
	case "default":
		opts = append(opts, task.WithTaskSorter(rootFirst))
	default: // "" and "none": the listing order of the generated Taskfile
		opts = append(opts, task.WithTaskSorter(func(items, _ []string) []string { return items }))
	}
	return opts
}

// alphanumeric and rootFirst are go-task's sorters (internal/sort).
func alphanumeric(items, _ []string) []string {
	slices.Sort(items)
	return items
}

func rootFirst(items, namespaces []string) []string {
	if len(namespaces) > 0 {
		return alphanumeric(items, namespaces)
	}
	slices.SortFunc(items, func(a, b string) int {
		ac, bc := strings.Contains(a, ":"), strings.Contains(b, ":")
		switch {
		case ac == bc:
			return strings.Compare(a, b)
		case !ac:
			return -1
		}
		return 1
	})
	return items
}

func restoreEnv(env []string) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			os.Setenv(k, v)
		}
	}
}

func translate(err error) error {
	if err == nil {
		return nil
	}
	var run *taskerrors.TaskRunError
	if errors.As(err, &run) {
		return &TaskFailed{Task: run.TaskName, ExitCode: run.TaskExitCode(), Err: run.Err}
	}
	return err
}
