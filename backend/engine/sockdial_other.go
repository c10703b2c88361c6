//go:build !linux

package engine

import (
	"context"
	"fmt"
	"net"
)

// dialPinnedSocket connects to the unix socket at real, a path without symbolic links (pinned by
// Create), once it has checked that real still holds a socket and no link (without openat2 and
// /proc the check and the connection are two steps).
func dialPinnedSocket(ctx context.Context, real string) (net.Conn, error) {
	if _, err := pinSocket(real, real); err != nil {
		return nil, err
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", real)
	if err != nil {
		return nil, fmt.Errorf("connecting to host socket %s: %w", real, unwrapOp(err))
	}
	return c, nil
}
