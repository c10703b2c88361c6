// Package httpserve runs an http.Server on a listener for as long as a context lives: the one way
// Skiff's front doors (the bridge, the Docker Engine API) serve HTTP.
//
//	err := httpserve.Serve(ctx, l, handler) // returns nil once ctx ends
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// ReadHeaderTimeout bounds how long a client may take to send a request's headers, so that a
// connection that never finishes them is dropped.
const ReadHeaderTimeout = 10 * time.Second

// Serve serves h on l until ctx ends, then shuts the server down (in-flight requests get 2 s,
// hijacked connections are the handler's to end) and returns nil; a failing listener's error is
// returned as it is. Requests' contexts derive from ctx.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		hs.Close()
	}()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
