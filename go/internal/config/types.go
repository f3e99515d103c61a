package config

import "strings"

// Version is the inventory version this runner reads.
const Version = 1

// Built-in task names, in the order of the default lollypops.tasks.
const (
	TaskCheckVars     = "check-vars"
	TaskDeployFlake   = "deploy-flake"
	TaskDeploySecrets = "deploy-secrets"
	TaskRebuild       = "rebuild"
	// TaskDiff shows what deploying would change; it activates nothing.
	TaskDiff = "diff"
)

// BuiltinTasks lists the built-in per-host tasks in their natural order.
var BuiltinTasks = []string{TaskCheckVars, TaskDeployFlake, TaskDeploySecrets, TaskRebuild, TaskDiff}

// Deploy methods.
const (
	MethodCopy    = "copy"
	MethodArchive = "archive"
)

// Host key policies.
const (
	HostKeyStrict    = "strict"
	HostKeyAcceptNew = "accept-new"
	HostKeyPinned    = "pinned"
)

// Upload times of a secret.
const (
	PreActivation  = "pre-activation"
	PostActivation = "post-activation"
)

// Inventory is the decoded document. Hosts is keyed by the nixosConfigurations
// attribute name.
type Inventory struct {
	Version int              `json:"version"`
	Hosts   map[string]*Host `json:"hosts"`
}

// Host is one host's deployment settings.
type Host struct {
	Flake      string               `json:"flake"`
	Deployment Deployment           `json:"deployment"`
	Secrets    Secrets              `json:"secrets"`
	Tasks      []string             `json:"tasks"`
	ExtraTasks map[string]ExtraTask `json:"extraTasks"`

	// Name is the host's key in Inventory.Hosts; set by Decode.
	Name string `json:"-"`
}

// Deployment says how to reach the host and how to ship the flake.
type Deployment struct {
	ConfigDir       string   `json:"config-dir"`
	DeployMethod    string   `json:"deploy-method"`
	LocalEvaluation bool     `json:"local-evaluation"`
	Tags            []string `json:"tags"`
	SSH             SSH      `json:"ssh"`
	Sudo            Sudo     `json:"sudo"`
	// Rollback, HealthChecks and Reboot govern the activation (rebuild).
	Rollback     Rollback               `json:"rollback"`
	HealthChecks map[string]HealthCheck `json:"health-checks"`
	Reboot       Reboot                 `json:"reboot"`
}

// Rollback makes a switch or test return to the previous system by itself
// when the activation fails, a health check fails, or the deployer cannot
// reach the host again within ConfirmTimeout seconds.
type Rollback struct {
	Enable         bool `json:"enable"`
	ConfirmTimeout int  `json:"confirm-timeout"`
}

// HealthCheck is a check run after the activation: Cmd on the host, or an
// HTTP GET of URL from the deployer that must answer Status. Each attempt
// has Timeout seconds; a failed one is retried Retries times, Interval
// seconds apart.
type HealthCheck struct {
	Cmd      *string `json:"cmd"`
	URL      *string `json:"url"`
	Status   int     `json:"status"`
	Timeout  int     `json:"timeout"`
	Retries  int     `json:"retries"`
	Interval int     `json:"interval"`
}

// Reboot reboots the host after a boot, or after a switch that changed the
// kernel or initrd, and waits Timeout seconds for it to come back.
type Reboot struct {
	Enable  bool `json:"enable"`
	Timeout int  `json:"timeout"`
}

// SSH holds the ssh connection settings. A nil User leaves the choice to ssh.
type SSH struct {
	Host          string   `json:"host"`
	User          *string  `json:"user"`
	Command       string   `json:"command"`
	Opts          []string `json:"opts"`
	HostKeyPolicy string   `json:"host-key-policy"`
	HostKey       *string  `json:"host-key"`
}

// Sudo holds the privilege escalation settings for commands on the host.
type Sudo struct {
	Enable  bool     `json:"enable"`
	Command string   `json:"command"`
	Opts    []string `json:"opts"`
}

// Secrets lists the files to provision on the host.
type Secrets struct {
	RemoveStale bool     `json:"remove-stale"`
	Files       []Secret `json:"files"`
}

// Secret is one file on the host whose content a local command prints.
type Secret struct {
	Name            string  `json:"name"`
	HomeManagerUser *string `json:"home-manager-user"`
	Cmd             string  `json:"cmd"`
	Path            string  `json:"path"`
	Owner           string  `json:"owner"`
	Group           string  `json:"group"`
	Mode            string  `json:"mode"`
	UploadAt        string  `json:"upload-at"`
	AllowEmpty      bool    `json:"allow-empty"`
}

// Label names the secret for messages: "db" or "alice/db" for a
// home-manager user's secret.
func (s *Secret) Label() string {
	if s.HomeManagerUser != nil {
		return *s.HomeManagerUser + "/" + s.Name
	}
	return s.Name
}

// ExtraTask is a user-defined shell task, or the replacement of a built-in.
type ExtraTask struct {
	Desc string   `json:"desc"`
	Cmds []string `json:"cmds"`
	Deps []string `json:"deps"`
	Dir  string   `json:"dir"`
}

// Target returns the ssh destination: "user@host", or "host" without a user.
func (s *SSH) Target() string {
	if s.User != nil {
		return *s.User + "@" + s.Host
	}
	return s.Host
}

// HasTask reports whether name is a built-in or one of the host's extra tasks.
// FlakeSource splits the flake's path into the store path of its source
// and the directory of its flake.nix in there ("" at the root): a flake
// written with ?dir= lives below its source, which is what the store,
// nix copy and the host's GC root know.
func (h *Host) FlakeSource() (root, dir string) {
	rest, ok := strings.CutPrefix(h.Flake, "/nix/store/")
	if !ok {
		return h.Flake, ""
	}
	name, dir, _ := strings.Cut(rest, "/")
	return "/nix/store/" + name, strings.Trim(dir, "/")
}

// FlakeRef is the flake reference of the flake at the store path root, in
// directory dir of it.
func FlakeRef(root, dir string) string {
	if dir == "" {
		return "path:" + root
	}
	return "path:" + root + "?dir=" + dir
}

func (h *Host) HasTask(name string) bool {
	if _, ok := h.ExtraTasks[name]; ok {
		return true
	}
	for _, b := range BuiltinTasks {
		if b == name {
			return true
		}
	}
	return false
}

// IsBuiltin reports whether the host's task name runs lollypops' own step,
// that is, it is a built-in the host did not replace with an extra task.
func (h *Host) IsBuiltin(name string) bool {
	if _, ok := h.ExtraTasks[name]; ok {
		return false
	}
	for _, b := range BuiltinTasks {
		if b == name {
			return true
		}
	}
	return false
}
