package main

import (
	"errors"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/plan"
)

// selectHosts returns, in natural order, the hosts that --on and --exclude
// select (deploy and exec), the flag that did the selecting, for messages,
// and the decoded inventory (every host: selecting by tag reads them all).
func selectHosts(doc *config.Document, on, exclude string) ([]string, string, *config.Inventory, error) {
	flag := "--on"
	var onSel, exSel plan.Selector
	var err error
	if on != "" {
		if onSel, err = plan.ParseSelector("--on", on); err != nil {
			return nil, flag, nil, &usageError{msg: err.Error(), hint: "--on takes host names, globs and @tags, comma-separated: --on web-1,'db-*',@eu"}
		}
	} else {
		flag = "--exclude"
	}
	if exclude != "" {
		if exSel, err = plan.ParseSelector("--exclude", exclude); err != nil {
			return nil, flag, nil, &usageError{msg: err.Error(), hint: "--exclude takes host names, globs and @tags, comma-separated"}
		}
	}
	inv, err := doc.Inventory(nil)
	if err != nil {
		return nil, flag, nil, err
	}
	hosts := make([]plan.HostTags, 0, len(inv.Hosts))
	for name, h := range inv.Hosts {
		hosts = append(hosts, plan.HostTags{Name: name, Tags: h.Deployment.Tags})
	}
	names, err := plan.SelectHosts(hosts, onSel, exSel, flag)
	if err != nil {
		var nm *plan.NoMatchError
		if errors.As(err, &nm) {
			return nil, flag, nil, &usageError{msg: err.Error(), hint: nm.Hint()}
		}
		return nil, flag, nil, err
	}
	return names, flag, inv, nil
}
