// Package getter replaces github.com/hashicorp/go-getter in lollypops'
// build (a replace directive in go/go.mod). go-task uses go-getter only to
// clone remote Taskfiles over git, which lollypops never reads: it hands
// go-task the Taskfile it generates. The real module links the AWS, Google
// Cloud, gRPC and OpenTelemetry SDKs, which made the runner three times
// larger and slower to start. This package keeps the one API go-task calls
// and refuses the download with an error that says why.
package getter

import (
	"context"
	"errors"
)

// ClientMode is how a Client fetches (go-getter's values).
type ClientMode uint

// ClientModeDir fetches a directory.
const ClientModeDir ClientMode = 2

// Client is go-getter's client, reduced to the fields go-task sets.
type Client struct {
	Ctx  context.Context
	Src  string
	Dst  string
	Mode ClientMode
}

// ErrRemote is what every download returns.
var ErrRemote = errors.New("remote Taskfiles are not supported by lollypops (it generates its own Taskfile)")

// Get refuses to download.
func (c *Client) Get() error { return ErrRemote }
