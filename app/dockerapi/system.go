package dockerapi

import (
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"

	"github.com/skiff-containers/skiff/backend/engine"
)

// ping answers GET and HEAD /_ping with the headers clients negotiate from.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("API-Version", MaxAPIVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "Skiff/"+s.opts.Version+" ("+runtime.GOOS+")")
	h.Set("Swarm", "inactive")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write([]byte("OK"))
	}
}

func (s *Server) kernel() string {
	if s.opts.Kernel != nil {
		return s.opts.Kernel()
	}
	return ""
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	v := system.VersionResponse{
		Platform: system.PlatformInfo{Name: "Skiff"},
		Version:  s.opts.Version, APIVersion: MaxAPIVersion, MinAPIVersion: MinAPIVersion,
		Os: "linux", Arch: runtime.GOARCH, GitCommit: s.opts.Commit, GoVersion: runtime.Version(),
		KernelVersion: s.kernel(),
		Components: []system.ComponentVersion{{Name: "Skiff Engine", Version: s.opts.Version,
			Details: map[string]string{"ApiVersion": MaxAPIVersion, "MinAPIVersion": MinAPIVersion,
				"Os": "linux", "Arch": runtime.GOARCH, "GitCommit": s.opts.Commit, "GoVersion": runtime.Version(),
				"Hypervisor": s.opts.Hypervisor}}},
	}
	writeJSON(w, http.StatusOK, v)
}

// machineArch is uname's name of the host's architecture, which Docker reports.
func machineArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cs, err := s.eng.List(ctx, engine.ListOptions{All: true})
	if err != nil {
		fail(w, err)
		return
	}
	ims, err := s.eng.Images().List(ctx)
	if err != nil {
		fail(w, err)
		return
	}
	host, _ := os.Hostname()
	in := system.Info{
		ID: "skiff", Containers: len(cs), Images: len(ims), Driver: "skiff",
		Plugins:         system.PluginsInfo{Volume: []string{}, Network: []string{}, Log: []string{"json-file"}},
		MemoryLimit:     true,
		SystemTime:      time.Now().Format(time.RFC3339Nano),
		LoggingDriver:   "json-file",
		CgroupDriver:    "none",
		KernelVersion:   s.kernel(),
		OperatingSystem: "Skiff", OSVersion: s.opts.Version, OSType: "linux", Architecture: machineArch(),
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               runtime.NumCPU(), MemTotal: s.opts.MemTotal,
		DockerRootDir:   s.eng.Home(),
		Name:            host,
		ServerVersion:   s.opts.Version,
		DefaultRuntime:  "skiff",
		Swarm:           swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		Isolation:       "",
		Labels:          []string{"skiff.hypervisor=" + s.opts.Hypervisor},
		SecurityOptions: []string{},
		Warnings:        []string{},
	}
	for _, c := range cs {
		switch c.State {
		case engine.StateRunning, engine.StateRestarting:
			in.ContainersRunning++
		case engine.StatePaused:
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	writeJSON(w, http.StatusOK, in)
}
