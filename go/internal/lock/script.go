package lock

import (
	_ "embed"
	"time"
)

// RootDir is the lock's directory on a host when the run acts as root there
// (ssh user root, or sudo enabled). /run is a tmpfs: a reboot frees it.
const RootDir = "/run/lollypops"

// UserDirName is the lock's directory, in the home of the ssh user, when the
// run acts as a user other than root (no sudo).
const UserDirName = ".lollypops-lock"

// Heartbeat is how often the run sends a byte to each of its holders; TTL
// is how long a holder waits for one before it gives the lock up (the
// bound for a run whose connection hangs without closing).
const (
	Heartbeat = 15 * time.Second
	TTL       = 90 * time.Second
)

// holderScript is the holder (holder.sh): it runs on the host, as the user
// the host's steps act as (through sudo when enabled). Its arguments and
// answers are described in the file.
//
//go:embed holder.sh
var holderScript string
