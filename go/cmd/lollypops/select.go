package main

import (
	"errors"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/plan"
)

// selectHosts returns, in natural order, the hosts that --on and --exclude
// select (deploy and exec), and the flag that did the selecting, for
// messages.
func selectHosts(doc *config.Document, on, exclude string) ([]string, string, error) {
	flag := "--on"
	var onSel, exSel plan.Selector
	var err error
	if on != "" {
		if onSel, err = plan.ParseSelector("--on", on); err != nil {
			return nil, flag, &usageError{msg: err.Error(), hint: "--on takes host names, globs and @tags, comma-separated: --on web-1,'db-*',@eu"}
		}
	} else {
		flag = "--exclude"
	}
	if exclude != "" {
		if exSel, err = plan.ParseSelector("--exclude", exclude); err != nil {
			return nil, flag, &usageError{msg: err.Error(), hint: "--exclude takes host names, globs and @tags, comma-separated"}
		}
	}
	inv, err := doc.Inventory(nil)
	if err != nil {
		return nil, flag, err
	}
	hosts := make([]plan.HostTags, 0, len(inv.Hosts))
	for name, h := range inv.Hosts {
		hosts = append(hosts, plan.HostTags{Name: name, Tags: h.Deployment.Tags})
	}
	names, err := plan.SelectHosts(hosts, onSel, exSel, flag)
	if err != nil {
		var nm *plan.NoMatchError
		if errors.As(err, &nm) {
			return nil, flag, &usageError{msg: err.Error(), hint: nm.Hint()}
		}
		return nil, flag, err
	}
	return names, flag, nil
}
