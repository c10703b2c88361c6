package app

import (
	"context"
	"runtime"
	"sync"

	"go.uber.org/zap"
)

// APIVersion is the version of the service API and the bridge protocol.
const APIVersion = 1

// Services is one set of the three services, sharing a backend and an event sink. The desktop app
// makes one; the bridge makes one per connection so that events go to the connection that
// subscribed and everything a connection started ends when it closes.
type Services struct {
	Containers *Containers
	Images     *Images
	System     *System
	Volumes    *Volumes
	Networks   *Networks
	Settings   *Settings

	hub *hub
}

// Option configures New.
type Option func(*options)

type options struct {
	log     *zap.Logger
	version VersionInfo
	desktop Desktop
}

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithVersion sets what System.Version reports.
func WithVersion(v VersionInfo) Option { return func(o *options) { o.version = v } }

// WithDesktop gives System the desktop's windows and dialogs.
func WithDesktop(d Desktop) Option { return func(o *options) { o.desktop = d } }

// New returns the services over b, emitting events to sink.
func New(b Backend, sink EventSink, opts ...Option) *Services {
	o := options{log: zap.NewNop(), version: VersionInfo{Version: "dev"}}
	for _, opt := range opts {
		opt(&o)
	}
	o.version.API = APIVersion
	o.version.GoVersion = runtime.Version()
	o.version.OS, o.version.Arch = runtime.GOOS, runtime.GOARCH
	h := newHub(sink)
	base := &base{b: b, hub: h, log: o.log, sessions: map[string]*session{}}
	return &Services{
		Containers: &Containers{base},
		Images:     &Images{base},
		System:     &System{base: base, version: o.version, desktop: o.desktop},
		Volumes:    &Volumes{base},
		Networks:   &Networks{base},
		Settings:   &Settings{base},
		hub:        h,
	}
}

// Ready releases the events of subscription name (see Containers.Ready). The bridge calls it once
// the reply carrying the name has been sent.
func (s *Services) Ready(name string) { s.hub.ready(name) }

// Close stops every subscription and session and cancels calls in flight.
func (s *Services) Close() {
	s.hub.close()
	s.Containers.closeSessions()
}

// base is what the three services share.
type base struct {
	b   Backend
	hub *hub
	log *zap.Logger

	mu       sync.Mutex // guards sessions
	sessions map[string]*session
}

// ctx is the context of a call: it ends when the Services are closed.
func (s *base) ctx() context.Context { return s.hub.ctx }
