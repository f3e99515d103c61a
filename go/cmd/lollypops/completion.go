package main

// Shell completion. lollypops --completion bash|zsh|fish prints a script;
// the script asks lollypops itself for the candidates of the word under the
// cursor, with the hidden command
//
//	lollypops [--inventory PATH] __complete WORD... CURRENT
//
// (the words typed after the command name, the last one being the word to
// complete, possibly empty). The flags come from the real flag set, so they
// cannot drift from --help; hosts, tags and tasks come from the inventory
// at hand (LOLLYPOPS_INVENTORY, or an --inventory typed on the line), read
// for names and tags only, or else from the host names the app wrapper
// lists for its flake (LOLLYPOPS_FLAKE_HOSTS), without evaluating any. The answer
// is a mode line (plain, files or dirs: complete paths with the shell's
// own means) followed by one candidate per line, "VALUE\tDESCRIPTION".
// __complete never fails: without a readable inventory it completes flags.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/deploy"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/shellword"
)

// completeCmd is the hidden command the completion scripts call.
const completeCmd = "__complete"

// shells are the shells --completion writes scripts for.
var shells = []string{"bash", "zsh", "fish"}

// Modes of a completion answer.
const (
	modePlain = "plain" // the candidates that follow
	modeFiles = "files" // file names, completed by the shell
	modeDirs  = "dirs"  // directory names, completed by the shell
)

// candidate is one completion and its description (shown by zsh and fish).
type candidate struct{ value, desc string }

// completion is the answer to one completion request.
type completion struct {
	mode  string
	cands []candidate
}

// flagValues are the values of the flags that take one of a few.
var flagValues = map[string][]candidate{
	"output": {{"interleaved", "output as it comes"}, {"group", "each task's output at its end"},
		{"prefixed", "each line prefixed with its task"}},
	"sort": {{"default", "each host's tasks together"}, {"alphanumeric", "by name"},
		{"none", "as generated"}},
	"completion": {{"bash", "script for bash"}, {"zsh", "script for zsh"}, {"fish", "script for fish"}},
}

// pathFlags are the flags whose value is a path, completed by the shell.
var pathFlags = map[string]string{"inventory": modeFiles, "flake": modeDirs, "dir": modeDirs, "temp-dir": modeDirs}

// actionDescs describe the values of REBUILD_ACTION (plan.Actions).
var actionDescs = map[string]string{
	"switch":       "build, activate now and at boot (default)",
	"boot":         "build, make it the boot default, do not activate",
	"test":         "build and activate now, not at boot",
	"dry-activate": "build and show what switch would change",
	"build":        "build only",
}

const rebuildVar = "REBUILD_ACTION="

// completeRequest recognizes the hidden command: __complete as the first
// argument, or after the --inventory the app wrapper (nix/apps.nix) puts
// before the user's arguments. It returns that inventory and the words.
func completeRequest(args []string) (inventory string, words []string, ok bool) {
	switch {
	case len(args) >= 1 && args[0] == completeCmd:
		return "", args[1:], true
	case len(args) >= 3 && args[0] == "--inventory" && args[2] == completeCmd:
		return args[1], args[3:], true
	case len(args) >= 2 && strings.HasPrefix(args[0], "--inventory=") && args[1] == completeCmd:
		return strings.TrimPrefix(args[0], "--inventory="), args[2:], true
	}
	return "", nil, false
}

// runComplete answers a completion request on stdout. It always succeeds:
// a shell's completion must not print errors into the command line.
func runComplete(wrapperInventory string, words []string, stdout io.Writer) (code int) {
	defer func() {
		if recover() != nil {
			code = exitOK
		}
	}()
	o, _ := parseFlags(nil, io.Discard)
	if o == nil || o.fs == nil {
		return exitOK
	}
	if len(words) == 0 {
		words = []string{""}
	}
	line := parseLine(o.fs, words[:len(words)-1])
	path := os.Getenv("LOLLYPOPS_INVENTORY")
	if wrapperInventory != "" {
		path = wrapperInventory
	}
	if line.inventory != "" {
		path = line.inventory
	}
	var fl *fleet
	switch hosts := os.Getenv(envFlakeHosts); {
	case path != "":
		fl, _ = loadFleet(path)
	case hosts != "":
		// A flake's hosts are completed by name and built-in step:
		// their tags and extra tasks would need every host evaluated.
		fl, _ = loadFleetNames(hosts)
	}
	var c completion
	if name, fs, rest, ok := subcommand(words[:len(words)-1]); ok {
		c = completeSub(name, fs, fl, parseLine(fs, rest), words[len(words)-1])
	} else {
		c = complete(o.fs, fl, line, words[len(words)-1])
	}
	fmt.Fprintln(stdout, c.mode)
	for _, cand := range c.cands {
		fmt.Fprintf(stdout, "%s\t%s\n", cand.value, oneLine(cand.desc))
	}
	return exitOK
}

// fleet is what completion needs of the inventory: names, tags and tasks.
type fleet struct {
	hosts []fleetHost // in natural order
	tags  []string    // in natural order
}

type fleetHost struct {
	name  string
	tags  []string
	steps []string // built-in steps, then extra tasks
	extra map[string]bool
}

// loadFleet reads the names, tags and extra tasks of the inventory at path,
// and nothing else: no host is decoded in full nor validated, so that a
// completion costs little even for a large fleet.
func loadFleet(path string) (*fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type entry struct {
		Deployment struct {
			Tags []string `json:"tags"`
		} `json:"deployment"`
		ExtraTasks map[string]struct{} `json:"extraTasks"`
	}
	var doc struct {
		Hosts map[string]entry `json:"hosts"`
		Homes map[string]entry `json:"homes"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	fl := &fleet{}
	add := func(name string, h entry, builtins []string) {
		fh := fleetHost{name: name, tags: h.Deployment.Tags, steps: slices.Clone(builtins),
			extra: map[string]bool{}}
		var extra []string
		for step := range h.ExtraTasks {
			fh.extra[step] = true
			if !slices.Contains(fh.steps, step) {
				extra = append(extra, step)
			}
		}
		plan.SortNatural(extra)
		fh.steps = append(fh.steps, extra...)
		fl.hosts = append(fl.hosts, fh)
		for _, t := range h.Deployment.Tags {
			if !slices.Contains(fl.tags, t) {
				fl.tags = append(fl.tags, t)
			}
		}
	}
	for name, h := range doc.Hosts {
		add(name, h, config.BuiltinTasks)
	}
	for name, h := range doc.Homes {
		add(name, h, config.HomeBuiltinTasks)
	}
	slices.SortFunc(fl.hosts, func(a, b fleetHost) int { return plan.CompareNatural(a.name, b.name) })
	plan.SortNatural(fl.tags)
	return fl, nil
}

// loadFleetNames reads the names the app lists for a flake: the hosts and
// homes, with the built-in steps.
func loadFleetNames(path string) (*fleet, error) {
	t, err := deploy.ReadTargetNames(path)
	if err != nil {
		return nil, err
	}
	fl := &fleet{}
	for _, name := range t.Hosts {
		fl.hosts = append(fl.hosts, fleetHost{name: name, steps: slices.Clone(config.BuiltinTasks), extra: map[string]bool{}})
	}
	for _, name := range t.Homes {
		fl.hosts = append(fl.hosts, fleetHost{name: name, steps: slices.Clone(config.HomeBuiltinTasks), extra: map[string]bool{}})
	}
	slices.SortFunc(fl.hosts, func(a, b fleetHost) int { return plan.CompareNatural(a.name, b.name) })
	return fl, nil
}

// cmdline is what the words before the one to complete say.
type cmdline struct {
	on, exclude, inventory string
	onGiven                bool            // --on or --exclude: the arguments are steps
	pending                *pflag.Flag     // the last word is a flag whose value comes next
	dash                   bool            // after "--": the arguments are the tasks' own
	vars                   map[string]bool // VAR=value arguments given
}

// parseLine reads the complete words as pflag would.
func parseLine(fs *pflag.FlagSet, words []string) *cmdline {
	l := &cmdline{vars: map[string]bool{}}
	set := func(f *pflag.Flag, value string) {
		switch f.Name {
		case "on":
			l.on, l.onGiven = value, true
		case "exclude":
			l.exclude, l.onGiven = value, true
		case "inventory":
			if rest, ok := strings.CutPrefix(value, "~/"); ok {
				value = filepath.Join(os.Getenv("HOME"), rest)
			}
			l.inventory = value
		}
	}
	for _, w := range words {
		// bash and zsh pass the words as typed: 'web-*' for web-*.
		if ws, ok := shellword.Literal(w); ok && len(ws) == 1 {
			w = ws[0]
		}
		switch {
		case l.dash:
		case l.pending != nil:
			set(l.pending, w)
			l.pending = nil
		case w == "--":
			l.dash = true
		case strings.HasPrefix(w, "--"):
			name, value, hasValue := strings.Cut(w[2:], "=")
			f := fs.Lookup(name)
			switch {
			case f == nil:
			case hasValue:
				set(f, value)
			case f.NoOptDefVal == "":
				l.pending = f
			}
		case strings.HasPrefix(w, "-") && len(w) > 1:
			// A cluster of shorthands: -pv, -C4, -C 4.
			for i := 1; i < len(w); i++ {
				f := fs.ShorthandLookup(w[i : i+1])
				if f == nil {
					break
				}
				if f.NoOptDefVal == "" {
					if i+1 < len(w) {
						set(f, w[i+1:])
					} else {
						l.pending = f
					}
					break
				}
			}
		default:
			if name, _, ok := strings.Cut(w, "="); ok {
				l.vars[name] = true
			}
		}
	}
	return l
}

// complete returns the candidates for the word cur after line. fl is nil
// when there is no readable inventory.
func complete(fs *pflag.FlagSet, fl *fleet, line *cmdline, cur string) completion {
	switch {
	case line.dash:
		return completion{mode: modePlain}
	case line.pending != nil:
		return flagValue(fl, line.pending, "", cur)
	case strings.HasPrefix(cur, "--") && strings.Contains(cur, "="):
		name, value, _ := strings.Cut(cur[2:], "=")
		if f := fs.Lookup(name); f != nil {
			return flagValue(fl, f, "--"+name+"=", value)
		}
		return completion{mode: modePlain}
	case len(cur) > 2 && cur[0] == '-' && cur[1] != '-' && cur[2] == '=':
		// -o=value, as pflag reads it.
		if f := fs.ShorthandLookup(cur[1:2]); f != nil && f.NoOptDefVal == "" {
			return flagValue(fl, f, cur[:3], cur[3:])
		}
		return completion{mode: modePlain}
	case strings.HasPrefix(cur, "-"):
		return completion{mode: modePlain, cands: flags(fs, cur)}
	case strings.HasPrefix(cur, rebuildVar):
		var cands []candidate
		for _, a := range plan.Actions {
			cands = append(cands, candidate{rebuildVar + a, actionDescs[a]})
		}
		return completion{mode: modePlain, cands: filter(cands, cur)}
	}
	var cands []candidate
	if fl != nil {
		if line.onGiven {
			cands = selectedSteps(fl, line.on, line.exclude)
		} else {
			cands = tasks(fl, cur)
		}
	}
	if cur != "" && !line.vars["REBUILD_ACTION"] {
		cands = append(cands, candidate{rebuildVar, "how the hosts activate: " + strings.Join(plan.Actions, ", ")})
	}
	return completion{mode: modePlain, cands: filter(cands, cur)}
}

// flags are the long flags of --help (hidden ones left out) that start
// with cur.
func flags(fs *pflag.FlagSet, cur string) []candidate {
	var cands []candidate
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		cands = append(cands, candidate{"--" + f.Name, firstSentence(f.Usage)})
	})
	return filter(cands, cur)
}

// flagValue completes the value of flag f; prefix ("--flag=") is put
// before each candidate.
func flagValue(fl *fleet, f *pflag.Flag, prefix, cur string) completion {
	if mode, ok := pathFlags[f.Name]; ok {
		return completion{mode: mode}
	}
	var cands []candidate
	switch f.Name {
	case "on", "exclude":
		cands = selectorItems(fl, cur)
	default:
		cands = filter(flagValues[f.Name], cur)
	}
	for i := range cands {
		cands[i].value = prefix + cands[i].value
	}
	return completion{mode: modePlain, cands: cands}
}

// selectorItems completes the last item of a --on or --exclude list: the
// hosts and @tags not in the list yet.
func selectorItems(fl *fleet, cur string) []candidate {
	if fl == nil {
		return nil
	}
	head, last := "", cur
	if i := strings.LastIndex(cur, ","); i >= 0 {
		head, last = cur[:i+1], cur[i+1:]
	}
	have := strings.Split(head, ",")
	var cands []candidate
	for _, t := range fl.tags {
		if !slices.Contains(have, "@"+t) {
			cands = append(cands, candidate{head + "@" + t, "tag of " + strings.Join(fl.tagged(t), ", ")})
		}
	}
	for _, h := range fl.hosts {
		if !slices.Contains(have, h.name) {
			cands = append(cands, candidate{head + h.name, hostDesc(h)})
		}
	}
	return filter(cands, head+last)
}

// tasks completes a task name: "all", the hosts, and the host:step tasks
// of the hosts the word already names (its part before ":", or the one
// host it is a prefix of), so that a large fleet lists its hosts first.
func tasks(fl *fleet, cur string) []candidate {
	var cands []candidate
	var matching []fleetHost
	for _, h := range fl.hosts {
		if strings.HasPrefix(h.name, cur) || strings.HasPrefix(cur, h.name+":") {
			matching = append(matching, h)
		}
	}
	for _, h := range fl.hosts {
		cands = append(cands, candidate{h.name, "deploy " + h.name})
		if len(matching) == 1 && matching[0].name == h.name || h.name == cur || strings.HasPrefix(cur, h.name+":") {
			for _, s := range h.steps {
				cands = append(cands, candidate{plan.TaskName(h.name, s), h.stepDesc(s)})
			}
		}
	}
	cands = append(cands, candidate{plan.AllTask, "deploy every host in parallel"})
	return cands
}

// selectedSteps completes the steps --on runs: those of the selected hosts (of
// every host while the selection does not parse or matches nothing).
func selectedSteps(fl *fleet, on, exclude string) []candidate {
	hosts := fl.hosts
	if sel := fl.selected(on, exclude); len(sel) > 0 {
		hosts = sel
	}
	var cands []candidate
	seen := map[string]bool{}
	for _, h := range hosts {
		for _, s := range h.steps {
			if !seen[s] {
				seen[s] = true
				cands = append(cands, candidate{s, h.stepDesc(s)})
			}
		}
	}
	return cands
}

// selected returns the hosts --on and --exclude select, as a run would.
func (fl *fleet) selected(on, exclude string) []fleetHost {
	var onSel, exSel plan.Selector
	var err error
	if on != "" {
		if onSel, err = plan.ParseSelector("--on", on); err != nil {
			return nil
		}
	}
	if exclude != "" {
		if exSel, err = plan.ParseSelector("--exclude", exclude); err != nil {
			return nil
		}
	}
	all := make([]plan.HostTags, len(fl.hosts))
	for i, h := range fl.hosts {
		all[i] = plan.HostTags{Name: h.name, Tags: h.tags}
	}
	names, err := plan.SelectHosts(all, onSel, exSel, "--on")
	if err != nil {
		return nil
	}
	picked := make(map[string]bool, len(names))
	for _, n := range names {
		picked[n] = true
	}
	var hosts []fleetHost
	for _, h := range fl.hosts {
		if picked[h.name] {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// tagged returns the hosts that carry tag.
func (fl *fleet) tagged(tag string) []string {
	var names []string
	for _, h := range fl.hosts {
		if slices.Contains(h.tags, tag) {
			names = append(names, h.name)
		}
	}
	return names
}

func hostDesc(h fleetHost) string {
	if len(h.tags) == 0 {
		return "host"
	}
	return "host, tags: " + strings.Join(h.tags, ", ")
}

func (h fleetHost) stepDesc(step string) string {
	if h.extra[step] {
		return "extra task " + step
	}
	return "built-in step " + step
}

// filter keeps the candidates that start with prefix.
func filter(cands []candidate, prefix string) []candidate {
	var out []candidate
	for _, c := range cands {
		if strings.HasPrefix(c.value, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// firstSentence shortens a flag's usage for a completion menu.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// oneLine keeps a description on its line of the answer.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\t", " ").Replace(s)
}

// printCompletion writes the completion script for shell.
func printCompletion(o *options, stdout io.Writer) error {
	if len(o.Args) > 0 || len(o.PostDash) > 0 {
		return usage("--completion takes no tasks or arguments", "lollypops --completion bash prints the script; load it with: source <(lollypops --completion bash)")
	}
	script, ok := completionScripts[o.Completion]
	if !ok {
		return usage(fmt.Sprintf("--completion %q: no completion for that shell", o.Completion), "lollypops --completion takes "+strings.Join(shells, ", ")+"; load it with: source <(lollypops --completion bash)")
	}
	_, err := io.WriteString(stdout, script)
	return err
}

// wantsCompletion reports whether the command line has --completion, even
// with an empty value (an error then).
func (o *options) wantsCompletion() bool {
	return o.fs != nil && o.fs.Changed("completion")
}

// subcommand returns the subcommand that words (before the word to
// complete) call, its flag set, and its words.
func subcommand(words []string) (string, *pflag.FlagSet, []string, bool) {
	for _, name := range []string{"exec", "plan", "apply"} {
		rest, ok := subArgs(words, name)
		if !ok {
			continue
		}
		var fs *pflag.FlagSet
		switch name {
		case "exec":
			o, _ := parseExecFlags(nil)
			fs = o.fs
		case "plan":
			o, _ := parsePlanFlags(nil)
			fs = o.fs
		case "apply":
			o, _ := parseApplyFlags(nil)
			fs = o.fs
		}
		return name, fs, rest, true
	}
	return "", nil, nil, false
}

// completeSub completes the word cur of a subcommand's line: its own
// flags; plan's hosts (all, or the ones --on selects), apply's plan file.
func completeSub(name string, fs *pflag.FlagSet, fl *fleet, line *cmdline, cur string) completion {
	file := func(f *pflag.Flag) bool { return name != "exec" && (f.Name == "output" || f.Name == "report") }
	switch {
	case line.dash:
		return completion{mode: modePlain}
	case line.pending != nil:
		if file(line.pending) {
			return completion{mode: modeFiles}
		}
		return flagValue(fl, line.pending, "", cur)
	case strings.HasPrefix(cur, "--") && strings.Contains(cur, "="):
		flag, value, _ := strings.Cut(cur[2:], "=")
		f := fs.Lookup(flag)
		switch {
		case f == nil:
			return completion{mode: modePlain}
		case file(f):
			return completion{mode: modeFiles}
		}
		return flagValue(fl, f, "--"+flag+"=", value)
	case strings.HasPrefix(cur, "-"):
		return completion{mode: modePlain, cands: flags(fs, cur)}
	}
	switch name {
	case "apply":
		return completion{mode: modeFiles}
	case "plan":
		if strings.HasPrefix(cur, rebuildVar) {
			var cands []candidate
			for _, a := range plan.Actions {
				cands = append(cands, candidate{rebuildVar + a, actionDescs[a]})
			}
			return completion{mode: modePlain, cands: filter(cands, cur)}
		}
		var cands []candidate
		if fl != nil && !line.onGiven {
			for _, h := range fl.hosts {
				cands = append(cands, candidate{h.name, hostDesc(h)})
			}
			cands = append(cands, candidate{plan.AllTask, "every host"})
		}
		if cur != "" && !line.vars["REBUILD_ACTION"] {
			cands = append(cands, candidate{rebuildVar, "how the hosts activate: " + strings.Join(plan.Actions, ", ")})
		}
		return completion{mode: modePlain, cands: filter(cands, cur)}
	}
	return completion{mode: modePlain}
}
