// Package bridge exposes the app services over HTTP: a WebSocket at /api/ws carrying method calls
// and events (the wire protocol in docs/contracts.md), GET /api/health, and the built frontend.
// It listens on the unix socket $SKIFF_HOME/skiff.sock (owner only) and, for `skiff serve --http`,
// on TCP with a random token. Methods are found by reflection over app.Containers, app.Images and
// app.System, so there is no second API to keep in sync. Client is the Go side used by the CLI.
//
//	srv := bridge.NewServer(backend, bridge.WithAssets(dist))
//	go srv.ServeUnix(ctx, filepath.Join(home, "skiff.sock"))
//	c, _ := bridge.Dial(ctx, filepath.Join(home, "skiff.sock"))
//	var cs []app.Container
//	err := c.Call(ctx, "Containers.List", &cs, true)
package bridge

import (
	"encoding/json"

	"github.com/skiff-containers/skiff/app"
)

// SocketName is the bridge's socket file in the data dir.
const SocketName = "skiff.sock"

// request is a client's call.
type request struct {
	ID     int64             `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

// message is anything the server sends: a reply (ID with Result or Error) or an event.
type message struct {
	ID     int64           `json:"id,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *app.Error      `json:"error,omitempty"`
	Event  string          `json:"event,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// Health is the reply of GET /api/health.
type Health struct {
	OK      bool            `json:"ok"`
	Version app.VersionInfo `json:"version"`
	PID     int             `json:"pid"`
}
