package dockerapi

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
)

// zeroTime is how Docker writes a time that has not happened.
const zeroTime = "0001-01-01T00:00:00Z"

func timeString(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func isUp(st engine.State) bool {
	return st == engine.StateRunning || st == engine.StatePaused
}

func dockerPort(p engine.PortMapping) network.Port {
	port, _ := network.PortFrom(uint16(p.ContainerPort), network.IPProtocol(p.Proto))
	return port
}

func hostAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// imageConfig is the config of the container's image, or an empty one when the image is gone.
func (s *Server) imageConfig(ctx context.Context, c *engine.Container) images.ImageConfig {
	if im, err := s.eng.Images().Get(ctx, c.ImageID); err == nil {
		return im.Config
	}
	return images.ImageConfig{}
}

// effectiveConfig is the container's Config as Docker reports it: the image's and the create
// options merged.
func effectiveConfig(c *engine.Container, ic images.ImageConfig) *container.Config {
	o := c.Config
	ep := ic.Entrypoint
	if o.Entrypoint != nil {
		ep = *o.Entrypoint
	}
	cmd := o.Cmd
	if len(cmd) == 0 && (o.Entrypoint == nil || len(*o.Entrypoint) == 0) {
		cmd = ic.Cmd
	}
	exposed := network.PortSet{}
	for _, p := range ic.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			exposed[port] = struct{}{}
		}
	}
	for _, p := range o.Ports {
		exposed[dockerPort(p)] = struct{}{}
	}
	volumes := map[string]struct{}{}
	for _, v := range ic.Volumes {
		volumes[v] = struct{}{}
	}
	if len(volumes) == 0 {
		volumes = nil
	}
	labels := map[string]string{}
	for k, v := range ic.Labels {
		labels[k] = v
	}
	for k, v := range o.Labels {
		labels[k] = v
	}
	return &container.Config{
		Hostname: c.Process.Hostname, User: c.Process.User, ExposedPorts: exposed,
		Tty: o.TTY, OpenStdin: o.OpenStdin, StdinOnce: o.OpenStdin, AttachStdin: o.OpenStdin,
		Env: c.Process.Env, Cmd: cmd, Image: c.Image, Volumes: volumes, WorkingDir: c.Process.WorkingDir,
		Entrypoint: ep, Labels: labels, StopSignal: c.Process.StopSignal, StopTimeout: o.StopTimeout,
		Healthcheck: healthConfig(c),
	}
}

func hostConfig(c *engine.Container) *container.HostConfig {
	o := c.Config
	hc := &container.HostConfig{
		LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{}},
		NetworkMode:   networkMode(c),
		PortBindings:  network.PortMap{},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(o.Restart.Name), MaximumRetryCount: o.Restart.MaximumRetryCount},
		AutoRemove:    o.AutoRemove,
		Resources:     container.Resources{Memory: o.Memory, NanoCPUs: int64(math.Round(o.CPUs * 1e9))},
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	for _, p := range o.Ports {
		b := network.PortBinding{HostIP: hostAddr(p.HostIP)}
		if p.HostPort != 0 {
			b.HostPort = strconv.Itoa(p.HostPort)
		}
		k := dockerPort(p)
		hc.PortBindings[k] = append(hc.PortBindings[k], b)
	}
	for _, m := range o.Mounts {
		if m.Type == engine.MountTmpfs {
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			hc.Tmpfs[m.Target] = ""
			continue
		}
		src := m.Source
		if m.Type == engine.MountVolume {
			src = m.Name
		}
		bind := src + ":" + m.Target
		if m.ReadOnly {
			bind += ":ro"
		}
		hc.Binds = append(hc.Binds, bind)
	}
	for _, b := range socketBinds(c) {
		bind := b.Source + ":" + b.Target
		if b.ReadOnly {
			bind += ":ro"
		}
		hc.Binds = append(hc.Binds, bind)
	}
	return hc
}

// socketBinds are the container's bind mounts of unix sockets; a Docker socket given without a
// source (a record from before SocketBinds) is shown as a bind of /var/run/docker.sock.
func socketBinds(c *engine.Container) []engine.SocketBind {
	out := slices.Clone(c.Config.SocketBinds)
	for _, t := range c.Config.Sockets {
		out = append(out, engine.SocketBind{Source: "/var/run/docker.sock", Target: t, Docker: true})
	}
	return out
}

// portMap is NetworkSettings.Ports: every published or exposed port, with its host bindings while
// the container runs.
func portMap(c *engine.Container, cfg *container.Config) network.PortMap {
	pm := network.PortMap{}
	for p := range cfg.ExposedPorts {
		pm[p] = nil
	}
	if !isUp(c.State) {
		return pm
	}
	for _, p := range c.Ports {
		k := dockerPort(p)
		pm[k] = append(pm[k], network.PortBinding{HostIP: hostAddr(p.HostIP), HostPort: strconv.Itoa(p.HostPort)})
	}
	return pm
}

func mountPoints(c *engine.Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range c.Mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		mp := container.MountPoint{Type: mount.TypeBind, Source: m.Source, Destination: m.Target,
			Mode: mode, RW: !m.ReadOnly, Propagation: mount.PropagationRPrivate}
		switch m.Type {
		case engine.MountVolume:
			mp.Type, mp.Name, mp.Driver, mp.Propagation = mount.TypeVolume, m.Name, "local", ""
			if !m.ReadOnly {
				mp.Mode = ""
			}
		case engine.MountTmpfs:
			mp = container.MountPoint{Type: mount.TypeTmpfs, Destination: m.Target, RW: !m.ReadOnly}
		}
		out = append(out, mp)
	}
	for _, b := range socketBinds(c) {
		mode := "rw"
		if b.ReadOnly {
			mode = "ro"
		}
		out = append(out, container.MountPoint{Type: mount.TypeBind, Source: b.Source, Destination: b.Target,
			Mode: mode, RW: !b.ReadOnly, Propagation: mount.PropagationRPrivate})
	}
	return out
}

func (s *Server) inspectResponse(ctx context.Context, c *engine.Container) container.InspectResponse {
	cfg := effectiveConfig(c, s.imageConfig(ctx, c))
	var path string
	var args []string
	if len(c.Process.Args) > 0 {
		path, args = c.Process.Args[0], c.Process.Args[1:]
	}
	if args == nil {
		args = []string{}
	}
	return container.InspectResponse{
		ID: c.ID, Created: timeString(c.Created), Path: path, Args: args,
		State: &container.State{
			Status: container.ContainerState(c.State), Running: isUp(c.State), Paused: c.State == engine.StatePaused,
			Restarting: c.State == engine.StateRestarting, Dead: c.State == engine.StateDead,
			ExitCode: c.ExitCode, Error: c.Error, StartedAt: timeString(c.StartedAt), FinishedAt: timeString(c.FinishedAt),
			Health: healthState(c),
		},
		Image: c.ImageID, LogPath: c.LogPath, Name: "/" + c.Name, RestartCount: c.RestartCount,
		Driver: "skiff", Platform: "linux", ExecIDs: nil,
		HostConfig: hostConfig(c), Mounts: mountPoints(c), Config: cfg,
		NetworkSettings: &container.NetworkSettings{Ports: portMap(c, cfg), Networks: endpointSettings(c)},
	}
}

func summary(c *engine.Container, now time.Time) container.Summary {
	sm := container.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Image, ImageID: c.ImageID,
		Command: quoteCommand(c.Process.Args), Created: c.Created.Unix(), Ports: []container.PortSummary{},
		Labels: c.Config.Labels, State: container.ContainerState(c.State), Status: statusText(c, now),
		Mounts: mountPoints(c), NetworkSettings: &container.NetworkSettingsSummary{Networks: endpointSettings(c)},
	}
	if sm.Labels == nil {
		sm.Labels = map[string]string{}
	}
	sm.HostConfig.NetworkMode = string(networkMode(c))
	for _, p := range c.Ports {
		ps := container.PortSummary{PrivatePort: uint16(p.ContainerPort), Type: p.Proto}
		if isUp(c.State) {
			ps.IP, ps.PublicPort = hostAddr(p.HostIP), uint16(p.HostPort)
		}
		sm.Ports = append(sm.Ports, ps)
	}
	sort.Slice(sm.Ports, func(i, j int) bool { return sm.Ports[i].PrivatePort < sm.Ports[j].PrivatePort })
	return sm
}

func quoteCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// statusText is docker ps's STATUS column ("Up 3 seconds", "Exited (0) 2 minutes ago").
func statusText(c *engine.Container, now time.Time) string {
	switch c.State {
	case engine.StateCreated:
		return "Created"
	case engine.StateRunning:
		return "Up " + humanDuration(now.Sub(c.StartedAt)) + healthSuffix(c)
	case engine.StatePaused:
		return "Up " + humanDuration(now.Sub(c.StartedAt)) + " (Paused)"
	case engine.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", c.ExitCode, humanDuration(now.Sub(c.FinishedAt)))
	case engine.StateDead:
		return "Dead"
	}
	if c.FinishedAt.IsZero() {
		return fmt.Sprintf("Exited (%d)", c.ExitCode)
	}
	return fmt.Sprintf("Exited (%d) %s ago", c.ExitCode, humanDuration(now.Sub(c.FinishedAt)))
}

// humanDuration words d as the docker CLI does (go-units' HumanDuration).
func humanDuration(d time.Duration) string {
	secs := int(d.Seconds())
	mins := int(d.Minutes())
	hours := int(math.Round(d.Hours()))
	switch {
	case secs < 1:
		return "Less than a second"
	case secs == 1:
		return "1 second"
	case secs < 60:
		return fmt.Sprintf("%d seconds", secs)
	case mins == 1:
		return "About a minute"
	case mins < 60:
		return fmt.Sprintf("%d minutes", mins)
	case hours == 1:
		return "About an hour"
	case hours < 48:
		return fmt.Sprintf("%d hours", hours)
	case hours < 24*7*2:
		return fmt.Sprintf("%d days", hours/24)
	case hours < 24*30*2:
		return fmt.Sprintf("%d weeks", hours/24/7)
	case hours < 24*365*2:
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}
