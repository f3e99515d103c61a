//go:build !linux && !darwin

package peercred

import "errors"

func of(int) (Peer, error) {
	return Peer{}, errors.New("peer credentials are not supported on this system")
}
