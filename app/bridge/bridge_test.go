package bridge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/apptest"
	"github.com/skiff-containers/skiff/app/bridge"
)

func serveUnix(t testing.TB, b app.Backend) (sock string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "skiff-bridge-") // short: sun_path is ~108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "home", bridge.SocketName)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	l, err := bridge.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- bridge.NewServer(b).Serve(ctx, l, "") }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

func dial(t testing.TB, sock string) *bridge.Client {
	t.Helper()
	c, err := bridge.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSocketPermissions(t *testing.T) {
	sock := serveUnix(t, apptest.NewFake())
	for path, want := range map[string]os.FileMode{sock: 0o600, filepath.Dir(sock): 0o700} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	if _, err := bridge.ListenUnix(sock); !errors.Is(err, bridge.ErrInUse) {
		t.Errorf("second listener: %v, want ErrInUse", err)
	}
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", sock)
	}}}
	resp, err := hc.Get("http://skiff/api/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h bridge.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || !h.OK || h.PID != os.Getpid() || h.Version.API != app.APIVersion {
		t.Errorf("health %+v, %v", h, err)
	}
}

func TestNoEngine(t *testing.T) {
	_, err := bridge.Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if !errors.Is(err, bridge.ErrNoEngine) {
		t.Errorf("Dial of a missing socket: %v, want ErrNoEngine", err)
	}
}

func TestCallsRoundTrip(t *testing.T) {
	c := dial(t, serveUnix(t, apptest.NewFake()))
	ctx := context.Background()
	var ctr app.Container
	if err := c.Call(ctx, "Containers.Run", &ctr, app.RunRequest{Image: "busybox", Name: "web", Cmd: []string{"sleep"}, Ports: []string{"8080:80"}}); err != nil {
		t.Fatal(err)
	}
	var list []app.Container
	if err := c.Call(ctx, "Containers.List", &list, false); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "web" || list[0].State != "running" || list[0].Ports[0].HostPort != 8080 {
		t.Errorf("List = %+v", list)
	}
	var ports []app.PortMapping
	if err := c.Call(ctx, "Containers.Port", &ports, "web"); err != nil || len(ports) != 1 {
		t.Errorf("Port = %v, %v", ports, err)
	}
	if err := c.Call(ctx, "Containers.Stop", nil, "web", 1); err != nil {
		t.Fatal(err)
	}
	var code int
	if err := c.Call(ctx, "Containers.Wait", &code, "web"); err != nil || code != 143 {
		t.Errorf("Wait = %d, %v", code, err)
	}
	var v app.VersionInfo
	if err := c.Call(ctx, "System.Version", &v); err != nil || v.API != app.APIVersion {
		t.Errorf("Version = %+v, %v", v, err)
	}

	errs := []struct {
		method string
		params []any
		code   string
		msg    string
	}{
		{"Containers.Inspect", []any{"nope"}, app.CodeNotFound, "nope"},
		{"Containers.Nope", nil, app.CodeNotFound, "unknown method"},
		{"Containers.List", nil, app.CodeInvalid, "takes 1 parameters"},
		{"Containers.List", []any{"yes"}, app.CodeInvalid, "parameter 1"},
		{"Containers.Create", []any{app.RunRequest{Image: "busybox", Memory: "lots"}}, app.CodeInvalid, "--memory"},
	}
	for _, tt := range errs {
		err := c.Call(ctx, tt.method, nil, tt.params...)
		var ae *app.Error
		if !errors.As(err, &ae) || ae.Code != tt.code || !strings.Contains(ae.Message, tt.msg) {
			t.Errorf("%s%v: %v, want code %s containing %q", tt.method, tt.params, err, tt.code, tt.msg)
		}
	}
}

func TestSubscriptionsOverTheSocket(t *testing.T) {
	fake := apptest.NewFake()
	sock := serveUnix(t, fake)
	c := dial(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ctr app.Container
	if err := c.Call(ctx, "Containers.Run", &ctr, app.RunRequest{Image: "busybox", Cmd: []string{"sleep"}}); err != nil {
		t.Fatal(err)
	}
	fake.AddLogs(ctr.ID, 2000, 80)
	sub, err := c.Subscribe(ctx, "Containers.SubscribeLogs", ctr.ID, app.LogQuery{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for lines < 2000 {
		ev, ok, err := sub.Next(ctx)
		if err != nil || !ok {
			t.Fatalf("after %d lines: %v %v", lines, ok, err)
		}
		var ls []app.LogLine
		if err := json.Unmarshal(ev.Data, &ls); err != nil {
			t.Fatal(err)
		}
		lines += len(ls)
	}
	// Exec with stdin over the bridge.
	ses, err := c.Subscribe(ctx, "Containers.ExecStart", ctr.ID, app.ExecRequest{Cmd: []string{"cat"}, Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Call(ctx, "Containers.SessionInput", nil, ses.Name, base64.StdEncoding.EncodeToString([]byte("ping\n")))
	c.Call(ctx, "Containers.SessionCloseInput", nil, ses.Name)
	var out strings.Builder
	for {
		ev, ok, err := ses.Next(ctx)
		if err != nil || !ok {
			t.Fatalf("session: %v %v", ok, err)
		}
		if ev.Name == "session-exit:"+ses.Name {
			break
		}
		var o app.SessionOutput
		json.Unmarshal(ev.Data, &o)
		b, _ := base64.StdEncoding.DecodeString(o.Data)
		out.Write(b)
	}
	if out.String() != "ping\n" {
		t.Errorf("exec output %q", out.String())
	}
	// Closing the connection ends its subscriptions (the log follow and an event stream).
	if _, err := c.Subscribe(ctx, "System.SubscribeEvents"); err != nil {
		t.Fatal(err)
	}
	if n := fake.ActiveStreams.Load(); n != 2 {
		t.Errorf("active streams %d, want 2", n)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for fake.ActiveStreams.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := fake.ActiveStreams.Load(); n != 0 {
		t.Errorf("%d streams still run after the connection closed", n)
	}
}

func TestEveryContractMethodIsServed(t *testing.T) {
	names := bridge.MethodNames()
	for _, m := range []string{
		"Containers.List", "Containers.Inspect", "Containers.Create", "Containers.Run", "Containers.Start",
		"Containers.Stop", "Containers.Restart", "Containers.Kill", "Containers.Pause", "Containers.Resume",
		"Containers.Remove", "Containers.Wait", "Containers.Port", "Containers.Logs", "Containers.SubscribeLogs",
		"Containers.SubscribeConsole", "Containers.Stats", "Containers.SubscribeStats", "Containers.ExecStart",
		"Containers.AttachStart", "Containers.SessionInput", "Containers.SessionCloseInput", "Containers.SessionResize",
		"Containers.AddMount", "Containers.Unsubscribe", "Images.List", "Images.Inspect", "Images.Pull",
		"Images.Remove", "Images.Load", "Images.Save", "Images.Prune", "System.Info", "System.Version",
		"System.DiskUsage", "System.Prune", "System.SubscribeEvents",
	} {
		if !slices.Contains(names, m) {
			t.Errorf("method %s is not served", m)
		}
	}
}

func TestTCPNeedsTheToken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	token := bridge.NewToken()
	assets := fstest.MapFS{"index.html": {Data: []byte("<title>Skiff</title>")}, "assets/app.js": {Data: []byte("x")}}
	go bridge.NewServer(apptest.NewFake(), bridge.WithAssets(assets)).Serve(ctx, l, token)
	base := "http://" + l.Addr().String()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar} // keeps the cookie set by the redirect, as a browser does
	get := func(path string, cookie *http.Cookie) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/", "/api/health", "/assets/app.js", "/?token=wrong"} {
		if code, _ := get(p, nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", p, code)
		}
	}
	if code, body := get("/?token="+token, nil); code != 200 || !strings.Contains(body, "Skiff") {
		t.Errorf("GET / with the token (redirected, the cookie set): %d %q", code, body)
	}
	if code, body := get("/assets/app.js", &http.Cookie{Name: "skiff_token", Value: token}); code != 200 || body != "x" {
		t.Errorf("asset with the cookie: %d %q", code, body)
	}
	if _, _, err := websocket.DefaultDialer.Dial("ws"+base[4:]+"/api/ws", nil); err == nil {
		t.Error("WebSocket without the token was accepted")
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+base[4:]+"/api/ws?token="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.WriteJSON(map[string]any{"id": 7, "method": "Containers.List", "params": []any{true}})
	var reply struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if err := ws.ReadJSON(&reply); err != nil || reply.ID != 7 || string(reply.Result) != "[]" {
		t.Errorf("raw WebSocket call: %+v %s %v", reply, reply.Result, err)
	}
	c, err := bridge.DialURL(ctx, base, token)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var info app.Info
	if err := c.Call(ctx, "System.Info", &info); err != nil || info.Hypervisor != "fake" {
		t.Errorf("Info over TCP: %+v %v", info, err)
	}
}

// A page of another origin, a DNS-rebound name, a token left in the address bar (see
// apptest.CheckDashboardGuard), on the bridge's own TCP server.
func TestTCPDashboardGuard(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	defer func() { cancel(); <-done }()
	token := bridge.NewToken()
	assets := fstest.MapFS{"index.html": {Data: []byte("<title>Skiff</title>")}}
	go func() { done <- bridge.NewServer(apptest.NewFake(), bridge.WithAssets(assets)).Serve(ctx, l, token) }()
	apptest.CheckDashboardGuard(t, l.Addr().String(), token)
}

func TestMalformedRequestsGetErrors(t *testing.T) {
	sock := serveUnix(t, apptest.NewFake())
	d := websocket.Dialer{NetDial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", sock) }}
	ws, _, err := d.Dial("ws://skiff/api/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, msg := range []string{`{"id":`, `{"id":"x","method":1}`, `[1,2]`} {
		ws.WriteMessage(websocket.TextMessage, []byte(msg))
		var reply struct {
			Error *app.Error `json:"error"`
		}
		if err := ws.ReadJSON(&reply); err != nil || reply.Error == nil || reply.Error.Code != app.CodeInvalid {
			t.Errorf("%s: reply %+v, %v", msg, reply.Error, err)
		}
	}
	ws.WriteJSON(map[string]any{"id": 1, "method": "System.Version", "params": []any{}})
	var ok struct {
		ID     int             `json:"id"`
		Result app.VersionInfo `json:"result"`
	}
	if err := ws.ReadJSON(&ok); err != nil || ok.ID != 1 || ok.Result.API != app.APIVersion {
		t.Errorf("the connection did not survive bad requests: %+v %v", ok, err)
	}
}
