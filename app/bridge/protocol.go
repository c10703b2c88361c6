// Package bridge exposes the app services over HTTP: a WebSocket at /api/ws carrying method calls
// and events (the wire protocol in docs/contracts.md), GET /api/health, and the built frontend.
// It listens on the unix socket $SKIFF_HOME/skiff.sock (owner only) and, for `skiff serve --http`,
// on TCP with a random token. Methods are found by reflection over the services of app.Services
// (Containers, Images, System, Volumes, Networks, Settings), so there is no second API to keep in
// sync. Client is the Go side used by the CLI.
//
//	srv := bridge.NewServer(backend, bridge.WithAssets(dist))
//	go srv.ServeUnix(ctx, filepath.Join(home, "skiff.sock"))
//	c, _ := bridge.Dial(ctx, filepath.Join(home, "skiff.sock"))
//	var cs []app.Container
//	err := c.Call(ctx, "Containers.List", &cs, true)
package bridge

import (
	"bytes"
	"encoding/json"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/internal/jsonstr"
)

// SocketName is the bridge's socket file in the data dir.
const SocketName = "skiff.sock"

// DockerSocketName is the Docker Engine API's socket (app/dockerapi) in the data dir; ListenUnix
// makes it owner-only like the bridge's.
const DockerSocketName = "docker.sock"

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

// appendJSON appends m as JSON. An event is framed by hand around its data (already JSON), which
// encoding/json would scan again to compact it.
func (m *message) appendJSON(b []byte) []byte {
	if m.Event == "" || m.ID != 0 || m.Result != nil || m.Error != nil {
		enc, _ := json.Marshal(m)
		return append(b, enc...)
	}
	b = append(b, `{"event":`...)
	b = jsonstr.Append(b, m.Event)
	if len(m.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, m.Data...)
	}
	return append(b, '}')
}

// parseMessage reads what appendJSON writes: events by hand, the rest with encoding/json.
func parseMessage(raw []byte, m *message) error {
	if rest, ok := bytes.CutPrefix(raw, []byte(`{"event":"`)); ok {
		if i := bytes.IndexAny(rest, `"\`); i > 0 && rest[i] == '"' {
			name, rest := rest[:i], rest[i+1:]
			if data, ok := bytes.CutPrefix(rest, []byte(`,"data":`)); ok && len(data) > 1 && data[len(data)-1] == '}' {
				*m = message{Event: string(name), Data: data[:len(data)-1]}
				return nil
			}
			if string(rest) == "}" {
				*m = message{Event: string(name)}
				return nil
			}
		}
	}
	return json.Unmarshal(raw, m)
}

// Health is the reply of GET /api/health.
type Health struct {
	OK      bool            `json:"ok"`
	Version app.VersionInfo `json:"version"`
	PID     int             `json:"pid"`
}
