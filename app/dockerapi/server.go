// Package dockerapi serves the Docker Engine API on Skiff's engine: a second front door beside the
// bridge (app/bridge), so that the docker CLI, Testcontainers and IDEs work against Skiff. It holds
// no state of its own: every endpoint maps onto the engine and its image store, so containers made
// through either door are the same containers. The wire types are the Moby project's own
// (github.com/moby/moby/api); the router is net/http's patterns behind a wrapper that strips the
// API-version prefix (/v1.41/ … /v1.50/, or none).
//
//	srv := dockerapi.New(eng, dockerapi.Options{Version: "1.0", Log: log})
//	l, _ := bridge.ListenUnix(filepath.Join(home, bridge.DockerSocketName))
//	go srv.Serve(ctx, l)
//
// What is not implemented answers 501 with a message naming the endpoint.
package dockerapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/httpserve"
)

// The API versions served: what docker CLI 28.x negotiates down to 1.41.
const (
	MaxAPIVersion = "1.50"
	MinAPIVersion = "1.41"
	maxMinor      = 50
	minMinor      = 41
)

// Engine is what the API needs of the engine (*engine.Engine implements it).
type Engine interface {
	Create(ctx context.Context, opts engine.CreateOptions) (*engine.Container, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout *time.Duration) error
	Restart(ctx context.Context, id string, timeout *time.Duration) error
	Kill(ctx context.Context, id, signal string) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Wait(ctx context.Context, id string) (int, error)
	Remove(ctx context.Context, id string, opts engine.RemoveOptions) error
	List(ctx context.Context, opts engine.ListOptions) ([]engine.Container, error)
	Inspect(ctx context.Context, id string) (*engine.Container, error)
	Stats(ctx context.Context, id string) (*engine.Stats, error)
	StatsStream(ctx context.Context, id string, interval time.Duration) (<-chan engine.Stats, error)
	Top(ctx context.Context, id string) ([]engine.TopProc, error)
	Changes(ctx context.Context, id string) ([]engine.Change, error)
	LogBatches(ctx context.Context, id string, opts engine.LogOptions) (<-chan []engine.LogEntry, error)
	Attach(ctx context.Context, id string) (*engine.Stdio, error)
	Exec(ctx context.Context, id string, opts engine.ExecOptions) (*engine.ExecSession, error)
	StatPath(ctx context.Context, id, path string) (engine.PathStat, error)
	CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, engine.PathStat, error)
	CopyTo(ctx context.Context, id, dir string, tar io.Reader, opts engine.CopyToOptions) error
	Events(ctx context.Context) <-chan engine.Event
	EventsSince(ctx context.Context, since time.Time) <-chan engine.Event
	EventHistory(since, until time.Time) []engine.Event
	Pull(ctx context.Context, ref string, po images.PullOptions) (*images.Image, error)
	Images() *images.Store
	Home() string
	VolumeEngine
	ComposeEngine
	networkEngine
}

var _ Engine = (*engine.Engine)(nil)

// Options describe the engine to clients (/version, /info).
type Options struct {
	Log        *zap.Logger
	Version    string        // Skiff's version (ServerVersion)
	Commit     string        // GitCommit
	Kernel     func() string // the guest kernel in use (KernelVersion); may be nil
	MemTotal   int64         // bytes of host memory
	Hypervisor string
}

// Server serves the Docker Engine API over one Engine.
type Server struct {
	eng   Engine
	opts  Options
	log   *zap.Logger
	mux   *http.ServeMux
	execs *execTable
}

// New returns a server over eng.
func New(eng Engine, opts Options) *Server {
	s := &Server{eng: eng, opts: opts, log: opts.Log, mux: http.NewServeMux(), execs: newExecTable()}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.opts.Version == "" {
		s.opts.Version = "dev"
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /_ping", s.ping) // HEAD too
	m.HandleFunc("GET /version", s.version)
	m.HandleFunc("GET /info", s.info)
	m.HandleFunc("GET /events", s.eventsStream)

	m.HandleFunc("GET /containers/json", s.listContainers)
	m.HandleFunc("POST /containers/create", s.createContainer)
	m.HandleFunc("GET /containers/{id}/json", s.inspectContainer)
	m.HandleFunc("POST /containers/{id}/start", s.startContainer)
	m.HandleFunc("POST /containers/{id}/stop", s.stopContainer)
	m.HandleFunc("POST /containers/{id}/restart", s.restartContainer)
	m.HandleFunc("POST /containers/{id}/kill", s.killContainer)
	m.HandleFunc("POST /containers/{id}/pause", s.pauseContainer)
	m.HandleFunc("POST /containers/{id}/unpause", s.unpauseContainer)
	m.HandleFunc("POST /containers/{id}/wait", s.waitContainer)
	m.HandleFunc("DELETE /containers/{id}", s.removeContainer)
	m.HandleFunc("GET /containers/{id}/logs", s.containerLogs)
	m.HandleFunc("POST /containers/{id}/attach", s.attachContainer)
	m.HandleFunc("POST /containers/{id}/resize", s.resizeContainer)
	m.HandleFunc("GET /containers/{id}/stats", s.containerStats)
	m.HandleFunc("GET /containers/{id}/top", s.containerTop)
	m.HandleFunc("GET /containers/{id}/changes", s.containerChanges)
	m.HandleFunc("HEAD /containers/{id}/archive", s.statArchive)
	m.HandleFunc("GET /containers/{id}/archive", s.getArchive)
	m.HandleFunc("PUT /containers/{id}/archive", s.putArchive)

	m.HandleFunc("POST /containers/{id}/exec", s.execCreate)
	m.HandleFunc("POST /exec/{id}/start", s.execStart)
	m.HandleFunc("POST /exec/{id}/resize", s.execResize)
	m.HandleFunc("GET /exec/{id}/json", s.execInspect)

	s.networkRoutes()

	s.volumeRoutes(m)
	s.composeRoutes(m)
	m.HandleFunc("GET /plugins", s.listPlugins)
	m.HandleFunc("GET /plugins/{name}/json", s.noSuchPlugin)

	m.HandleFunc("GET /images/json", s.listImages)
	m.HandleFunc("POST /images/load", s.loadImages)
	m.HandleFunc("POST /images/create", s.pullImage)
	m.HandleFunc("POST /auth", s.login)
	// Image names hold slashes ("localhost:5000/app:1"), so the name is the rest of the path and
	// the handlers split off the operation ("/json", "/tag") themselves.
	m.HandleFunc("GET /images/{name...}", s.getImage)
	m.HandleFunc("POST /images/{name...}", s.postImage)
	m.HandleFunc("DELETE /images/{name...}", s.removeImage)

	m.HandleFunc("/", s.notImplemented)
}

// ServeHTTP strips the API-version prefix and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, v, ok := versionPrefix(r.URL.Path); ok {
		minor, err := strconv.Atoi(strings.TrimPrefix(v, "1."))
		switch {
		case err != nil || !strings.HasPrefix(v, "1."):
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid API version %q in the path", v))
			return
		case minor > maxMinor:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", v, MaxAPIVersion))
			return
		case minor < minMinor:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion))
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = rest, ""
		if raw, _, ok := versionPrefix(r.URL.RawPath); ok {
			u.RawPath = raw
		}
		r2.URL = &u
		r = r2
	}
	s.log.Debug("docker api", zap.String("method", r.Method), zap.String("path", r.URL.Path))
	s.mux.ServeHTTP(w, r)
}

// versionPrefix splits "/v1.50/containers/json" into "/containers/json" and "1.50".
func versionPrefix(p string) (rest, version string, ok bool) {
	if !strings.HasPrefix(p, "/v") || len(p) < 3 || p[2] < '0' || p[2] > '9' {
		return "", "", false
	}
	v, rest, found := strings.Cut(p[2:], "/")
	if !found {
		return "", "", false
	}
	return "/" + rest, v, true
}

// Serve serves the API on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	return httpserve.Serve(ctx, l, s)
}

func (s *Server) notImplemented(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	s.log.Warn("docker api: not implemented", zap.String("method", r.Method), zap.String("path", r.URL.Path))
	writeError(w, http.StatusNotImplemented,
		fmt.Sprintf("Skiff does not implement %s %s of the Docker Engine API yet", r.Method, r.URL.Path))
}
