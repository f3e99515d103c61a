// Package version holds the lollypops version, set at link time:
//
//	go build -ldflags "-X github.com/lollypops/lollypops/go/internal/version.Version=1.2.3"
package version

import "runtime/debug"

// Version is the lollypops release; "dev" for builds without -ldflags.
var Version = "dev"

// GoTask returns the version of the go-task module linked into the running
// binary, or "unknown".
func GoTask() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/go-task/task/v3" {
			return dep.Version
		}
	}
	return "unknown"
}
