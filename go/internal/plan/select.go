package plan

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Selector picks hosts for --on and --exclude: a comma-separated list of
// host names, globs ("web-*", path.Match syntax) and tags ("@web").
type Selector []string

// ParseSelector splits a --on or --exclude value. Empty items and invalid
// globs are errors.
func ParseSelector(flag, s string) (Selector, error) {
	var sel Selector
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "" || item == "@":
			return nil, fmt.Errorf("%s %q: an empty host, glob or @tag", flag, s)
		case !strings.HasPrefix(item, "@"):
			if _, err := path.Match(item, ""); err != nil {
				return nil, fmt.Errorf("%s %q: %q is not a valid glob", flag, s, item)
			}
		}
		sel = append(sel, item)
	}
	return sel, nil
}

// matches reports whether a host with the given tags is selected.
func (s Selector) matches(host string, tags []string) bool {
	for _, item := range s {
		if tag, ok := strings.CutPrefix(item, "@"); ok {
			if slices.Contains(tags, tag) {
				return true
			}
		} else if ok, _ := path.Match(item, host); ok {
			return true
		}
	}
	return false
}

// HostTags is a host's name and tags, as selection sees it.
type HostTags struct {
	Name string
	Tags []string
}

// NoMatchError is a selector that selects no host.
type NoMatchError struct {
	Flag, Value string
	Hosts, Tags []string // what exists, for the message
	Suggestions []string
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("%s %s matches no host", e.Flag, e.Value)
}

// Hint names what exists.
func (e *NoMatchError) Hint() string {
	hint := DidYouMean(e.Suggestions)
	if hint != "" {
		hint += " "
	}
	hint += "hosts: " + listSome(e.Hosts)
	if len(e.Tags) > 0 {
		tags := make([]string, len(e.Tags))
		for i, t := range e.Tags {
			tags[i] = "@" + t
		}
		hint += "; tags: " + listSome(tags)
	}
	return hint
}

func listSome(names []string) string {
	const most = 12
	if len(names) > most {
		return strings.Join(names[:most], ", ") + fmt.Sprintf(" and %d more", len(names)-most)
	}
	return strings.Join(names, ", ")
}

// SelectHosts returns, in natural order, the hosts on selects and exclude
// does not. Each item of on must select at least one host; a selection
// that is empty in the end is an error too.
func SelectHosts(hosts []HostTags, on, exclude Selector, onFlag string) ([]string, error) {
	var names, allTags []string
	for _, h := range hosts {
		names = append(names, h.Name)
		for _, t := range h.Tags {
			if !slices.Contains(allTags, t) {
				allTags = append(allTags, t)
			}
		}
	}
	SortNatural(names)
	SortNatural(allTags)
	noMatch := func(flag, value string) error {
		cands := append(slices.Clone(names), prefixed(allTags)...)
		return &NoMatchError{Flag: flag, Value: value, Hosts: names, Tags: allTags, Suggestions: Suggest(value, cands)}
	}
	for _, item := range on {
		if !slices.ContainsFunc(hosts, func(h HostTags) bool { return Selector{item}.matches(h.Name, h.Tags) }) {
			return nil, noMatch(onFlag, item)
		}
	}
	var sel []string
	for _, h := range hosts {
		if (on == nil || on.matches(h.Name, h.Tags)) && !exclude.matches(h.Name, h.Tags) {
			sel = append(sel, h.Name)
		}
	}
	if len(sel) == 0 {
		return nil, &NoMatchError{Flag: onFlag, Value: strings.Join(on, ",") + " without the excluded hosts",
			Hosts: names, Tags: allTags}
	}
	SortNatural(sel)
	return sel, nil
}

func prefixed(tags []string) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = "@" + t
	}
	return out
}
