package main

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/deploy"
	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/plan"
)

// selectHosts returns, in natural order, the hosts that --on and --exclude
// select (deploy and exec), the flag that did the selecting, for messages,
// and the decoded inventory (every host: selecting by tag reads them all).
func selectHosts(ctx context.Context, src *deploy.Source, on, exclude string) ([]string, string, *config.Inventory, error) {
	flag := "--on"
	var onSel, exSel plan.Selector
	var err error
	if on != "" {
		if onSel, err = plan.ParseSelector("--on", on); err != nil {
			return nil, flag, nil, usage(err.Error(), "--on takes host names, globs and @tags, comma-separated: --on web-1,'db-*',@eu")
		}
	} else {
		flag = "--exclude"
	}
	if exclude != "" {
		if exSel, err = plan.ParseSelector("--exclude", exclude); err != nil {
			return nil, flag, nil, usage(err.Error(), "--exclude takes host names, globs and @tags, comma-separated")
		}
	}
	// Names and globs select without evaluating a host; a tag needs every
	// host's tags.
	var inv *config.Inventory
	hosts := make([]plan.HostTags, 0, len(src.Names()))
	if strings.Contains(on+exclude, "@") {
		if inv, err = src.Load(ctx, nil); err != nil {
			return nil, flag, nil, fault.As(fault.Input, err)
		}
		for name, h := range inv.Hosts {
			hosts = append(hosts, plan.HostTags{Name: name, Tags: h.Deployment.Tags})
		}
	} else {
		for _, name := range src.Names() {
			hosts = append(hosts, plan.HostTags{Name: name})
		}
	}
	names, err := plan.SelectHosts(hosts, onSel, exSel, flag)
	if err != nil {
		var nm *plan.NoMatchError
		if errors.As(err, &nm) {
			return nil, flag, nil, usage(err.Error(), nm.Hint())
		}
		return nil, flag, nil, err
	}
	if inv, err = src.LoadMatched(ctx, names); err != nil {
		return nil, flag, nil, fault.As(fault.Input, err)
	}
	// Hosts without lollypops' module are no deployment targets.
	names = slices.DeleteFunc(names, func(n string) bool { return src.HasNoModule(n) })
	return names, flag, inv, nil
}
