package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/internal/httpserve"
)

// ErrInUse means another process already serves the socket.
var ErrInUse = errors.New("socket in use")

// Server serves the services of one Backend.
type Server struct {
	backend app.Backend
	log     *zap.Logger
	assets  fs.FS
	appOpts []app.Option
	version app.VersionInfo
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the server's logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(s *Server) { s.log = l } }

// WithAssets serves the built frontend (the contents of frontend/dist) at /.
func WithAssets(f fs.FS) Option { return func(s *Server) { s.assets = f } }

// WithVersion sets the version reported by System.Version and /api/health.
func WithVersion(v app.VersionInfo) Option { return func(s *Server) { s.version = v } }

// NewServer returns a server over b.
func NewServer(b app.Backend, opts ...Option) *Server {
	s := &Server{backend: b, log: zap.NewNop(), version: app.VersionInfo{Version: "dev"}}
	for _, o := range opts {
		o(s)
	}
	s.appOpts = []app.Option{app.WithLogger(s.log), app.WithVersion(s.version)}
	return s
}

// Handler returns the HTTP handler, unguarded: as served on the owner-only socket. Over TCP, Serve
// puts Protect in front of it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		v := s.version
		v.API = app.APIVersion
		json.NewEncoder(w).Encode(Health{OK: true, Version: v, PID: os.Getpid()})
	})
	// Origins are checked by Protect on TCP (in front of this handler, or of a proxy to it); the
	// socket is owner-only and no browser reaches it.
	up := websocket.Upgrader{ReadBufferSize: 32 << 10, WriteBufferSize: 64 << 10, CheckOrigin: func(*http.Request) bool { return true }}
	mux.HandleFunc("GET /api/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has replied
		}
		s.serveConn(r.Context(), ws)
	})
	mux.HandleFunc("/", s.serveAssets)
	return mux
}

func (s *Server) serveAssets(w http.ResponseWriter, r *http.Request) {
	if s.assets == nil {
		http.Error(w, "this Skiff was built without the frontend (run `make frontend`)", http.StatusNotFound)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	if st, err := fs.Stat(s.assets, name); err != nil || st.IsDir() {
		name = "index.html" // client-side routes
	}
	if _, err := fs.Stat(s.assets, "index.html"); err != nil && name == "index.html" {
		http.Error(w, "this Skiff was built without the frontend (run `make frontend`)", http.StatusNotFound)
		return
	}
	http.ServeFileFS(w, r, s.assets, name)
}

// NewToken returns a random token for Handler.
func NewToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ServeUnix serves on the unix socket at sockPath until ctx ends. The directory is made 0700, the
// socket 0600, and connections from other users are refused (peer credentials). A stale socket
// file is replaced; a live one is ErrInUse.
func (s *Server) ServeUnix(ctx context.Context, sockPath string) error {
	l, err := ListenUnix(sockPath)
	if err != nil {
		return err
	}
	return s.Serve(ctx, l, "")
}

// ListenUnix makes the owner-only listener that ServeUnix uses.
func ListenUnix(sockPath string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(sockPath), 0o700); err != nil {
		return nil, fmt.Errorf("creating the socket directory: %w", err)
	}
	if err := os.Chmod(filepath.Dir(sockPath), 0o700); err != nil {
		return nil, fmt.Errorf("securing the socket directory: %w", err)
	}
	if _, err := os.Stat(sockPath); err == nil {
		if c, err := net.DialTimeout("unix", sockPath, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listening on %s: %w (another Skiff engine is running)", sockPath, ErrInUse)
		}
		os.Remove(sockPath)
	}
	l, err := net.Listen("unix", sockPath)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", sockPath, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(sockPath, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("securing %s: %w", sockPath, err)
	}
	return &peerListener{Listener: l}, nil
}

// Serve serves HTTP on l until ctx ends. With a non-empty token (a TCP listener) every request
// passes Protect(l.Addr(), token, …).
func (s *Server) Serve(ctx context.Context, l net.Listener, token string) error {
	h := s.Handler()
	if token != "" {
		h = Protect(l.Addr(), token, h)
	}
	return httpserve.Serve(ctx, l, h)
}

// peerListener refuses connections from other users.
type peerListener struct{ net.Listener }

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && (uid == os.Getuid() || uid == 0) {
			return c, nil
		}
		c.Close()
	}
}

// serveConn runs one WebSocket connection: its own Services, so its subscriptions end with it.
func (s *Server) serveConn(ctx context.Context, ws *websocket.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message, 256)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		defer cancel()
		for {
			select {
			case m := <-out:
				ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if err := ws.WriteMessage(websocket.TextMessage, m.appendJSON(nil)); err != nil {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	send := func(m *message) {
		select {
		case out <- m:
		case <-ctx.Done():
		}
	}
	sink := app.EventSinkFunc(func(name string, data any) {
		var raw []byte
		var err error
		if ls, ok := data.([]app.LogLine); ok {
			raw = app.AppendLogLines(nil, ls) // the one high-volume stream
		} else {
			raw, err = json.Marshal(data)
		}
		if err != nil {
			s.log.Warn("encoding an event", zap.String("event", name), zap.Error(err))
			return
		}
		send(&message{Event: name, Data: raw})
	})
	svc := app.New(s.backend, sink, s.appOpts...)
	m := methodsOf(svc)
	var calls sync.WaitGroup
	defer func() {
		cancel()
		svc.Close()
		calls.Wait()
		writer.Wait()
		ws.Close()
	}()
	ws.SetReadLimit(8 << 20)
	for {
		_, raw, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var req request
		if err := json.Unmarshal(raw, &req); err != nil {
			send(&message{ID: req.ID, Error: app.Errorf(app.CodeInvalid, "malformed request: %v", err)})
			continue
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			res, aerr := m.call(req.Method, req.Params)
			if aerr != nil {
				send(&message{ID: req.ID, Error: aerr})
				return
			}
			if len(res) == 0 || string(res) == "null" {
				res = json.RawMessage("null")
			}
			send(&message{ID: req.ID, Result: res})
			var name string
			if _, ok := app.Streams()[req.Method]; ok && json.Unmarshal(res, &name) == nil {
				svc.Ready(name) // the reply is queued before any of the subscription's events
			}
		}()
	}
}
