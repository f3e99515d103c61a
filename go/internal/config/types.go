package config

import (
	"encoding/json"
	"strings"
)

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

// HomeBuiltinTasks are the built-in tasks of a home-manager target: it has
// no flake on the host to deploy, and no system to diff; its rebuild
// activates the home configuration.
var HomeBuiltinTasks = []string{TaskCheckVars, TaskDeploySecrets, TaskRebuild}

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

// Inventory is the decoded document. Hosts holds every target, keyed by its
// name: the NixOS hosts (the document's "hosts", by nixosConfigurations
// attribute name) and the home-manager targets (its "homes", by
// homeConfigurations attribute name), which have Host.Home set. Both kinds
// share one namespace of names, tasks and selection; MarshalJSON writes each
// into its own map.
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
	// Home is set for a home-manager target (an entry of the document's
	// "homes"): its Flake, and the Deployment fields other than Tags, SSH
	// and Sudo, are then unset and unused.
	Home *HomeTarget `json:"-"`
}

// HomeTarget is what a home-manager target has that a NixOS host has not.
type HomeTarget struct {
	// ActivationPackage is the configuration's activation package: its
	// derivation (built here) or its output path. Its activate script
	// switches the user's home to it.
	ActivationPackage string
	// Directory is the user's home directory on the host; the list of the
	// secrets lollypops wrote there lives below it.
	Directory string
}

// Home is one entry of the document's "homes": a home-manager
// configuration deployed to a host on its own, as its user.
type Home struct {
	ActivationPackage string               `json:"activation-package"`
	HomeDirectory     string               `json:"home-directory"`
	Deployment        HomeDeployment       `json:"deployment"`
	Secrets           Secrets              `json:"secrets"`
	Tasks             []string             `json:"tasks"`
	ExtraTasks        map[string]ExtraTask `json:"extraTasks"`
}

// HomeDeployment says how to reach a home-manager target's host.
type HomeDeployment struct {
	Tags []string `json:"tags"`
	SSH  SSH      `json:"ssh"`
	Sudo Sudo     `json:"sudo"`
}

// Target returns the home entry as a target of the run.
func (e *Home) Target(name string) *Host {
	return &Host{
		Name: name,
		Deployment: Deployment{
			Tags: e.Deployment.Tags,
			SSH:  e.Deployment.SSH,
			Sudo: e.Deployment.Sudo,
		},
		Secrets:    e.Secrets,
		Tasks:      e.Tasks,
		ExtraTasks: e.ExtraTasks,
		Home:       &HomeTarget{ActivationPackage: e.ActivationPackage, Directory: e.HomeDirectory},
	}
}

// HomeEntry returns a home-manager target as its entry of "homes".
func (h *Host) HomeEntry() *Home {
	return &Home{
		ActivationPackage: h.Home.ActivationPackage,
		HomeDirectory:     h.Home.Directory,
		Deployment:        HomeDeployment{Tags: h.Deployment.Tags, SSH: h.Deployment.SSH, Sudo: h.Deployment.Sudo},
		Secrets:           h.Secrets,
		Tasks:             h.Tasks,
		ExtraTasks:        h.ExtraTasks,
	}
}

// MarshalJSON writes the inventory as the document Decode reads: NixOS
// hosts under "hosts", home-manager targets under "homes".
func (inv Inventory) MarshalJSON() ([]byte, error) {
	doc := struct {
		Version int              `json:"version"`
		Hosts   map[string]*Host `json:"hosts"`
		Homes   map[string]*Home `json:"homes"`
	}{Version: inv.Version, Hosts: map[string]*Host{}, Homes: map[string]*Home{}}
	for name, h := range inv.Hosts {
		if h.Home != nil {
			doc.Homes[name] = h.HomeEntry()
		} else {
			doc.Hosts[name] = h
		}
	}
	return json.Marshal(doc)
}

// Builtins returns the built-in tasks the host offers.
func (h *Host) Builtins() []string {
	if h.Home != nil {
		return HomeBuiltinTasks
	}
	return BuiltinTasks
}

// Deployment says how to reach the host and how to ship the flake.
type Deployment struct {
	ConfigDir       string `json:"config-dir"`
	DeployMethod    string `json:"deploy-method"`
	LocalEvaluation bool   `json:"local-evaluation"`
	// BuildHost, when set, builds the system: evaluated here, built
	// there, copied from there to the host.
	BuildHost *BuildHost `json:"build-host"`
	Tags      []string   `json:"tags"`
	SSH       SSH        `json:"ssh"`
	Sudo      Sudo       `json:"sudo"`
	// Rollback, HealthChecks, Reboot and Activation govern the
	// activation (rebuild).
	Rollback     Rollback               `json:"rollback"`
	HealthChecks map[string]HealthCheck `json:"health-checks"`
	Reboot       Reboot                 `json:"reboot"`
	Activation   Activation             `json:"activation"`
}

// Activation is what nixos-rebuild's options say about an activation:
// force the boot loader's installation (--install-bootloader), activate a
// specialisation (--specialisation), or keep the one the host runs, and
// install into another profile (--profile-name).
type Activation struct {
	InstallBootloader  bool    `json:"install-bootloader"`
	Specialisation     *string `json:"specialisation"`
	KeepSpecialisation bool    `json:"keep-specialisation"`
	ProfileName        *string `json:"profile-name"`
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

// BuildHost is the machine that builds a host's system
// (lollypops.deployment.build-host): reached with ssh as the host is, with
// the host's ssh command and these settings.
type BuildHost struct {
	Host          string   `json:"host"`
	User          *string  `json:"user"`
	Opts          []string `json:"opts"`
	HostKey       *string  `json:"host-key"`
	HostKeyPolicy string   `json:"host-key-policy"`
}

// SSH returns the ssh settings of the build host; command is the ssh
// program (the host's ssh.command).
func (b *BuildHost) SSH(command string) SSH {
	return SSH{Host: b.Host, User: b.User, Command: command, Opts: b.Opts, HostKeyPolicy: b.HostKeyPolicy, HostKey: b.HostKey}
}

// Target is the build host's ssh destination: "user@host", or "host".
func (b *BuildHost) Target() string {
	if b.User != nil {
		return *b.User + "@" + b.Host
	}
	return b.Host
}

// EvaluatesHere reports whether the host's system is evaluated on the
// deployer: with local-evaluation, or with a build host (as nixos-rebuild
// --build-host, the derivation is made here).
func (d *Deployment) EvaluatesHere() bool {
	return d.LocalEvaluation || d.BuildHost != nil
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
	// RestartUnits and ReloadUnits are restarted or reloaded on the host,
	// if they run, when a deploy changes the secret's value (NixOS
	// secrets only: empty for a home-manager user's).
	RestartUnits []string `json:"restartUnits"`
	ReloadUnits  []string `json:"reloadUnits"`
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
	for _, b := range h.Builtins() {
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
	for _, b := range h.Builtins() {
		if b == name {
			return true
		}
	}
	return false
}
