//go:build !linux && !darwin

package bridge

import (
	"errors"
	"net"
)

// peerUID is not available here: connections are refused.
func peerUID(net.Conn) (int, error) {
	return -1, errors.New("peer credentials are not supported on this OS")
}
