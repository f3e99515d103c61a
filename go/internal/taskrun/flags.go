package taskrun

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/go-task/task/v3/experiments"
	"github.com/go-task/task/v3/taskrc"
	taskrcast "github.com/go-task/task/v3/taskrc/ast"
)

// Flags are the flags of the task CLI of the pinned go-task version, which
// lollypops accepts verbatim. go-task keeps its own flag definitions in an
// internal package, so they are declared again here; TestFlagParity
// compares the two sets. Defaults come, as in go-task, from TASK_*
// environment variables, then .taskrc.yml files, then built-in values.
type Flags struct {
	Version, Help, Init                      bool
	Completion                               string
	List, ListAll, ListJSON                  bool
	Sort                                     string
	Status, NoStatus, Nested, Insecure       bool
	Force, ForceAll, Watch, Verbose, Silent  bool
	DisableFuzzy, AssumeYes, Interactive     bool
	Parallel, Dry, Summary, ExitCode         bool
	Dir, Taskfile, TempDir                   string
	Output, OutputGroupBegin, OutputGroupEnd string
	OutputGroupErrorOnly, Color              bool
	Concurrency                              int
	Interval                                 time.Duration
	Failfast, Global, Experiments, Download  bool
	Offline, ClearCache                      bool
	TrustedHosts                             []string
	Timeout, Expiry                          time.Duration
	RemoteCacheDir, CACert, Cert, CertKey    string

	config *taskrcast.TaskRC
	fs     *pflag.FlagSet
}

// AddFlags declares go-task's flags on fs. dir is where .taskrc.yml files
// and experiments are looked up (the working directory).
func (f *Flags) AddFlags(fs *pflag.FlagSet, dir string) {
	config, _ := taskrc.GetConfig(dir)
	experiments.ParseWithConfig(dir, config)
	f.config, f.fs = config, fs
	c := config
	if c == nil {
		c = &taskrcast.TaskRC{}
	}

	fs.BoolVar(&f.Version, "version", false, "Show the lollypops and go-task versions.")
	fs.BoolVarP(&f.Help, "help", "h", false, "Show this help.")
	fs.BoolVarP(&f.Init, "init", "i", false, "Not available: lollypops generates its Taskfile from the inventory.")
	fs.StringVar(&f.Completion, "completion", "", "Print the shell completion script for bash, zsh or fish (source <(lollypops --completion bash)).")
	fs.BoolVarP(&f.List, "list", "l", false, "Lists tasks with description of current Taskfile.")
	fs.BoolVarP(&f.ListAll, "list-all", "a", false, "Lists tasks with or without a description.")
	fs.BoolVarP(&f.ListJSON, "json", "j", false, "Formats task list as JSON; with diff tasks, prints their diffs as one JSON document.")
	fs.StringVar(&f.Sort, "sort", "", "Changes the order of the tasks when listed. [default|alphanumeric|none]. lollypops' default keeps each host's tasks together.")
	fs.BoolVar(&f.Status, "status", false, "Exits with non-zero exit code if any of the given tasks is not up-to-date.")
	fs.BoolVar(&f.NoStatus, "no-status", false, "Ignore status when listing tasks as JSON")
	fs.BoolVar(&f.Nested, "nested", false, "Nest namespaces when listing tasks as JSON")
	fs.BoolVar(&f.Insecure, "insecure", get(c.Remote.Insecure, "REMOTE_INSECURE", false), "Forces Task to download Taskfiles over insecure connections.")
	fs.BoolVarP(&f.Watch, "watch", "w", false, "Not available: lollypops tasks have no sources to watch.")
	fs.BoolVarP(&f.Verbose, "verbose", "v", get(c.Verbose, "VERBOSE", false), "Enables verbose mode: every command each step runs.")
	fs.BoolVarP(&f.Silent, "silent", "s", get(c.Silent, "SILENT", false), "Disables echoing.")
	fs.BoolVar(&f.DisableFuzzy, "disable-fuzzy", get(c.DisableFuzzy, "DISABLE_FUZZY", false), "Disables fuzzy matching for task names.")
	fs.BoolVarP(&f.AssumeYes, "yes", "y", get(nil, "ASSUME_YES", false), "Assume \"yes\" as answer to all prompts.")
	fs.BoolVar(&f.Interactive, "interactive", get(c.Interactive, "INTERACTIVE", false), "Prompt for missing required variables.")
	fs.BoolVarP(&f.Parallel, "parallel", "p", false, "Executes tasks provided on command line in parallel.")
	fs.BoolVarP(&f.Dry, "dry", "n", get(nil, "DRY", false), "Prints the commands each step would run, in order, without touching any host.")
	fs.BoolVar(&f.Summary, "summary", false, "Show summary about a task.")
	fs.BoolVarP(&f.ExitCode, "exit-code", "x", false, "Pass-through the exit code of the task command.")
	fs.StringVarP(&f.Dir, "dir", "d", "", "Sets the directory in which extra tasks run (default: the current directory).")
	fs.StringVarP(&f.Taskfile, "taskfile", "t", "", "Not available: lollypops generates its Taskfile from the inventory.")
	fs.StringVar(&f.TempDir, "temp-dir", get(c.TempDir, "TEMP_DIR", ""), "Sets the directory used to store Task temporary files, such as checksums.")
	fs.StringVarP(&f.Output, "output", "o", get(nil, "OUTPUT", ""), "Sets output style: [interleaved|group|prefixed]. Without it, a terminal shows a live line per host (docs/usage.md).")
	fs.StringVar(&f.OutputGroupBegin, "output-group-begin", get(nil, "OUTPUT_GROUP_BEGIN", ""), "Message template to print before a task's grouped output.")
	fs.StringVar(&f.OutputGroupEnd, "output-group-end", get(nil, "OUTPUT_GROUP_END", ""), "Message template to print after a task's grouped output.")
	fs.BoolVar(&f.OutputGroupErrorOnly, "output-group-error-only", get(nil, "OUTPUT_GROUP_ERROR_ONLY", false), "Swallow output from successful tasks.")
	fs.BoolVarP(&f.Color, "color", "c", get(c.Color, "COLOR", true), "Colored output. Enabled by default. Set flag to false or use NO_COLOR=1 to disable.")
	fs.IntVarP(&f.Concurrency, "concurrency", "C", get(c.Concurrency, "CONCURRENCY", 0), "Limit number of tasks to run concurrently.")
	fs.DurationVarP(&f.Interval, "interval", "I", 0, "Interval to watch for changes.")
	fs.BoolVarP(&f.Failfast, "failfast", "F", get(&c.Failfast, "FAILFAST", false), "When running tasks in parallel, stop all tasks if one fails.")
	fs.BoolVarP(&f.Global, "global", "g", false, "Not available: lollypops generates its Taskfile from the inventory.")
	fs.BoolVar(&f.Experiments, "experiments", false, "Lists all the available experiments and whether or not they are enabled.")
	fs.BoolVar(&f.Download, "download", false, "Forces task to download remote Taskfiles and ignore any cached versions.")
	fs.BoolVar(&f.Offline, "offline", get(c.Remote.Offline, "REMOTE_OFFLINE", false), "Forces Task to only use local or cached Taskfiles.")
	fs.StringSliceVar(&f.TrustedHosts, "trusted-hosts", get(&c.Remote.TrustedHosts, "REMOTE_TRUSTED_HOSTS", []string(nil)), "List of trusted hosts for remote Taskfiles (comma-separated).")
	fs.DurationVar(&f.Timeout, "timeout", get(c.Remote.Timeout, "REMOTE_TIMEOUT", 10*time.Second), "Timeout for downloading remote Taskfiles.")
	fs.BoolVar(&f.ClearCache, "clear-cache", false, "Clear the remote cache.")
	fs.DurationVar(&f.Expiry, "expiry", get(c.Remote.CacheExpiry, "REMOTE_CACHE_EXPIRY", time.Duration(0)), "Expiry duration for cached remote Taskfiles.")
	fs.StringVar(&f.RemoteCacheDir, "remote-cache-dir", get(c.Remote.CacheDir, "REMOTE_CACHE_DIR", os.Getenv("TASK_REMOTE_DIR")), "Directory to cache remote Taskfiles.")
	fs.StringVar(&f.CACert, "cacert", get(c.Remote.CACert, "REMOTE_CACERT", ""), "Path to a custom CA certificate for HTTPS connections.")
	fs.StringVar(&f.Cert, "cert", get(c.Remote.Cert, "REMOTE_CERT", ""), "Path to a client certificate for HTTPS connections.")
	fs.StringVar(&f.CertKey, "cert-key", get(c.Remote.CertKey, "REMOTE_CERT_KEY", ""), "Path to a client certificate key for HTTPS connections.")
	// Flags that only concern Taskfiles lollypops never reads stay declared
	// (TASK_* variables and .taskrc files may set them, as for go-task) but
	// out of --help; given on the command line, they are refused.
	for _, name := range append(RemoteFlags, "init", "global", "taskfile", "watch", "interval") {
		fs.MarkHidden(name)
	}
	if experiments.GentleForce.Enabled() {
		fs.BoolVarP(&f.Force, "force", "f", false, "Forces execution of the directly called task.")
		fs.BoolVar(&f.ForceAll, "force-all", false, "Forces execution of the called task and all its dependant tasks.")
	} else {
		fs.BoolVarP(&f.ForceAll, "force", "f", false, "Forces execution even when the task is up-to-date.")
	}
}

// RemoteFlags are go-task's flags for remote Taskfiles (downloads, caches,
// certificates). lollypops hands go-task the Taskfile it generates, so they
// mean nothing here.
var RemoteFlags = []string{"insecure", "download", "offline", "trusted-hosts", "timeout", "clear-cache",
	"expiry", "remote-cache-dir", "cacert", "cert", "cert-key"}

// resolveColor applies go-task's colour rules once the flags are parsed:
// an explicit setting wins, then NO_COLOR, then FORCE_COLOR or CI.
func (f *Flags) resolveColor() {
	explicit := f.fs.Changed("color") || os.Getenv("TASK_COLOR") != "" || (f.config != nil && f.config.Color != nil)
	if explicit {
		return
	}
	if os.Getenv("NO_COLOR") != "" {
		f.Color = false
	} else if ci, _ := strconv.ParseBool(os.Getenv("CI")); os.Getenv("FORCE_COLOR") != "" || ci {
		f.Color = true
	}
}

// get returns the TASK_<key> environment value, else the .taskrc value,
// else fallback: go-task's precedence for flag defaults.
func get[T any](rc *T, key string, fallback T) T {
	if v, ok := env[T](key); ok {
		return v
	}
	if rc != nil {
		return *rc
	}
	return fallback
}

func env[T any](key string) (T, bool) {
	var zero T
	raw := os.Getenv("TASK_" + key)
	if raw == "" {
		return zero, false
	}
	var v any
	var err error
	switch any(zero).(type) {
	case bool:
		v, err = strconv.ParseBool(raw)
	case int:
		v, err = strconv.Atoi(raw)
	case time.Duration:
		v, err = time.ParseDuration(raw)
	case string:
		v = raw
	case []string:
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		if len(parts) == 0 {
			return zero, false
		}
		v = parts
	}
	if err != nil {
		return zero, false
	}
	return v.(T), true
}
