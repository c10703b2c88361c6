package dockerapi

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
)

// createOptions maps a Docker create request onto the engine's options. What the engine cannot do
// is refused with a message naming the field, never dropped, unless ignoring it is harmless (a
// logging option of the default driver, a console size). imageExposed are the image's exposed
// ports ("80/tcp"), for PublishAllPorts.
func createOptions(name, platform string, req *container.CreateRequest, imageExposed []string) (engine.CreateOptions, error) {
	cfg := req.Config
	if cfg == nil {
		return engine.CreateOptions{}, badRequest("config cannot be empty in order to create a container")
	}
	if cfg.Image == "" {
		return engine.CreateOptions{}, badRequest("no image given in the container config")
	}
	o := engine.CreateOptions{
		Name: strings.TrimPrefix(name, "/"), Image: cfg.Image, Platform: platform, Pull: images.PullNever,
		Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User, Hostname: cfg.Hostname,
		Labels: cfg.Labels, TTY: cfg.Tty, OpenStdin: cfg.OpenStdin, StopSignal: cfg.StopSignal, StopTimeout: cfg.StopTimeout,
		Healthcheck: healthFromAPI(cfg.Healthcheck),
	}
	if cfg.Entrypoint != nil {
		ep := cfg.Entrypoint
		if len(ep) == 1 && ep[0] == "" { // --entrypoint "": no entrypoint
			ep = []string{}
		}
		o.Entrypoint = &ep
	}
	if err := unsupportedConfig(cfg); err != nil {
		return o, err
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := unsupportedHostConfig(hc); err != nil {
		return o, err
	}
	ports, err := portMappings(hc.PortBindings)
	if err != nil {
		return o, err
	}
	if hc.PublishAllPorts {
		ports = append(ports, publishAll(cfg.ExposedPorts, imageExposed, ports)...)
	}
	o.Ports = ports
	if cfg.NetworkDisabled {
		hc.NetworkMode = engine.NetworkNone
	}
	if o.Networks, err = createNetworks(string(hc.NetworkMode), req.NetworkingConfig); err != nil {
		return o, err
	}
	for _, b := range hc.Binds {
		m, err := engine.ParseVolume(b)
		if err != nil {
			return o, badRequest("HostConfig.Binds: %v", err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	for _, m := range hc.Mounts {
		mm, err := apiMount(m)
		if err != nil {
			return o, err
		}
		o.Mounts = append(o.Mounts, mm)
	}
	for target, opts := range hc.Tmpfs {
		spec := target
		if opts != "" {
			spec += ":" + opts
		}
		mm, err := engine.ParseTmpfs(spec)
		if err != nil {
			return o, badRequest("HostConfig.Tmpfs: %v", err)
		}
		o.Mounts = append(o.Mounts, mm)
	}
	// Config.Volumes are anonymous volumes, unless a mount above covers the path.
	covered := map[string]bool{}
	for _, m := range o.Mounts {
		covered[m.Target] = true
	}
	targets := make([]string, 0, len(cfg.Volumes))
	for t := range cfg.Volumes {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		mm, err := engine.ParseVolume(t)
		if err != nil || mm.Type != engine.MountVolume {
			return o, badRequest("Config.Volumes: %q is not an absolute container path", t)
		}
		if !covered[mm.Target] {
			o.Mounts = append(o.Mounts, mm)
			covered[mm.Target] = true
		}
	}
	o.AutoRemove = hc.AutoRemove
	o.Restart = engine.RestartPolicy{Name: string(hc.RestartPolicy.Name), MaximumRetryCount: hc.RestartPolicy.MaximumRetryCount}
	if o.Restart.Name == "" {
		o.Restart.Name = "no"
	}
	if o.AutoRemove && o.Restart.Name != "no" {
		return o, badRequest("conflicting options: cannot specify both --restart and --rm")
	}
	o.Memory = hc.Memory
	for k, v := range hc.StorageOpt {
		if k != "size" {
			return o, badRequest("HostConfig.StorageOpt %q: only size is supported", k)
		}
		n, err := engine.ParseStorageSize(v)
		if err != nil {
			return o, badRequest("HostConfig.StorageOpt size %q: %v", v, err)
		}
		o.StorageSize = n
	}
	switch {
	case hc.NanoCPUs != 0 && hc.CPUQuota != 0:
		return o, badRequest("conflicting options: NanoCPUs and CPU Quota cannot both be set")
	case hc.NanoCPUs < 0:
		return o, badRequest("HostConfig.NanoCpus %d: must not be negative", hc.NanoCPUs)
	case hc.NanoCPUs > 0:
		o.CPUs = float64(hc.NanoCPUs) / 1e9
	case hc.CPUQuota > 0:
		period := hc.CPUPeriod
		if period == 0 {
			period = 100000
		}
		o.CPUs = float64(hc.CPUQuota) / float64(period)
	}
	return o, nil
}

func unsupportedConfig(cfg *container.Config) error {
	switch {
	case cfg.Domainname != "":
		return badRequest("Config.Domainname: not supported by Skiff yet")
	}
	return nil
}

func unsupportedHostConfig(hc *container.HostConfig) error {
	type check struct {
		bad  bool
		what string
	}
	checks := []check{
		{len(hc.VolumesFrom) > 0, "HostConfig.VolumesFrom"},
		{hc.VolumeDriver != "", "HostConfig.VolumeDriver"},
		{hc.Privileged, "HostConfig.Privileged"},
		{len(hc.CapAdd) > 0 || len(hc.CapDrop) > 0, "HostConfig.CapAdd/CapDrop"},
		{len(hc.DNS) > 0 || len(hc.DNSSearch) > 0 || len(hc.DNSOptions) > 0, "HostConfig.Dns/DnsSearch/DnsOptions"},
		{len(hc.ExtraHosts) > 0, "HostConfig.ExtraHosts (--add-host)"},
		{len(hc.Links) > 0, "HostConfig.Links"},
		{hc.ReadonlyRootfs, "HostConfig.ReadonlyRootfs"},
		{len(hc.Devices) > 0 || len(hc.DeviceRequests) > 0, "HostConfig.Devices/DeviceRequests"},
		{hc.PidMode != "" || hc.IpcMode != "" || hc.UTSMode != "" || hc.UsernsMode != "", "HostConfig.PidMode/IpcMode/UTSMode/UsernsMode"},
		{len(hc.Sysctls) > 0, "HostConfig.Sysctls"},
		{len(hc.SecurityOpt) > 0, "HostConfig.SecurityOpt"},
		{hc.CpusetCpus != "" || hc.CpusetMems != "", "HostConfig.CpusetCpus/CpusetMems"},
		{hc.MemoryReservation != 0 || (hc.MemorySwap != 0 && hc.MemorySwap != -1 && hc.MemorySwap != 2*hc.Memory), "HostConfig.MemoryReservation/MemorySwap"},
		{hc.PidsLimit != nil && *hc.PidsLimit > 0, "HostConfig.PidsLimit"},
		{len(hc.Ulimits) > 0, "HostConfig.Ulimits"},
		{hc.ShmSize != 0, "HostConfig.ShmSize"},
		{hc.LogConfig.Type != "" && hc.LogConfig.Type != "json-file", fmt.Sprintf("HostConfig.LogConfig.Type %q: Skiff logs as json-file", hc.LogConfig.Type)},
		{hc.Runtime != "" && hc.Runtime != "skiff", fmt.Sprintf("HostConfig.Runtime %q", hc.Runtime)},
	}
	for _, c := range checks {
		if c.bad {
			if strings.Contains(c.what, ":") {
				return badRequest("%s", c.what)
			}
			return badRequest("%s: not supported by Skiff yet", c.what)
		}
	}
	return nil
}

// portMappings turns PortBindings into the engine's port mappings; an empty or "0" host port
// asks for a free one.
func portMappings(pm network.PortMap) ([]engine.PortMapping, error) {
	keys := make([]network.Port, 0, len(pm))
	for p := range pm {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	var out []engine.PortMapping
	for _, p := range keys {
		proto := string(p.Proto())
		if proto != "tcp" && proto != "udp" {
			return nil, badRequest("HostConfig.PortBindings %s: only tcp and udp ports are supported", p)
		}
		bindings := pm[p]
		if len(bindings) == 0 {
			bindings = []network.PortBinding{{}}
		}
		for _, b := range bindings {
			m := engine.PortMapping{ContainerPort: int(p.Num()), Proto: proto}
			if b.HostIP.IsValid() {
				m.HostIP = b.HostIP.String()
			}
			if b.HostPort != "" {
				n, err := strconv.Atoi(b.HostPort)
				if err != nil || n < 0 || n > 65535 {
					return nil, badRequest("HostConfig.PortBindings %s: invalid host port %q (ranges are not supported)", p, b.HostPort)
				}
				m.HostPort = n
			}
			if m.ContainerPort == 0 {
				return nil, badRequest("HostConfig.PortBindings %s: invalid container port", p)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// publishAll publishes every exposed port not yet published on a free host port (-P).
func publishAll(exposed network.PortSet, imageExposed []string, have []engine.PortMapping) []engine.PortMapping {
	done := map[string]bool{}
	for _, m := range have {
		done[fmt.Sprintf("%d/%s", m.ContainerPort, m.Proto)] = true
	}
	all := map[string]bool{}
	for p := range exposed {
		all[p.String()] = true
	}
	for _, p := range imageExposed {
		all[p] = true
	}
	names := make([]string, 0, len(all))
	for p := range all {
		names = append(names, p)
	}
	sort.Strings(names)
	var out []engine.PortMapping
	for _, n := range names {
		p, err := network.ParsePort(n)
		if err != nil || done[p.String()] || (p.Proto() != "tcp" && p.Proto() != "udp") {
			continue
		}
		out = append(out, engine.PortMapping{ContainerPort: int(p.Num()), Proto: string(p.Proto())})
	}
	return out
}

// apiMount maps one HostConfig.Mounts entry (--mount) onto an engine mount.
func apiMount(m mount.Mount) (engine.Mount, error) {
	bad := func(format string, a ...any) (engine.Mount, error) {
		return engine.Mount{}, badRequest("HostConfig.Mounts (%s at %s): %s", m.Type, m.Target, fmt.Sprintf(format, a...))
	}
	switch m.Type {
	case mount.TypeBind:
		if m.BindOptions != nil && m.BindOptions.Propagation != "" && m.BindOptions.Propagation != mount.PropagationRPrivate {
			return bad("bind propagation %q is not supported by Skiff", m.BindOptions.Propagation)
		}
		mm, err := engine.ParseVolume(m.Source + ":" + m.Target)
		if err != nil || mm.Type != engine.MountBind {
			return bad("%v", err)
		}
		mm.ReadOnly = m.ReadOnly
		return mm, nil
	case mount.TypeVolume:
		if m.VolumeOptions != nil {
			vo := m.VolumeOptions
			if vo.DriverConfig != nil && vo.DriverConfig.Name != "" && vo.DriverConfig.Name != "local" {
				return bad("volume driver %q: only local volumes are supported", vo.DriverConfig.Name)
			}
			if vo.DriverConfig != nil && len(vo.DriverConfig.Options) > 0 {
				return bad("volume driver options are not supported by Skiff")
			}
			if vo.Subpath != "" {
				return bad("a volume subpath is not supported by Skiff yet")
			}
		}
		spec := m.Target
		if m.Source != "" {
			spec = m.Source + ":" + m.Target
		}
		mm, err := engine.ParseVolume(spec)
		if err != nil || mm.Type != engine.MountVolume {
			return bad("%q is not a volume name (%v)", m.Source, err)
		}
		mm.ReadOnly = m.ReadOnly
		mm.NoCopy = m.VolumeOptions != nil && m.VolumeOptions.NoCopy
		return mm, nil
	case mount.TypeTmpfs:
		if m.Source != "" {
			return bad("a tmpfs has no source")
		}
		mm, err := engine.ParseTmpfs(m.Target)
		if err != nil {
			return bad("%v", err)
		}
		if o := m.TmpfsOptions; o != nil {
			if len(o.Options) > 0 {
				return bad("tmpfs options %v are not supported by Skiff (size and mode are)", o.Options)
			}
			mm.TmpfsSize, mm.TmpfsMode = o.SizeBytes, uint32(o.Mode)&0o7777 // the raw bits (01777), as the CLI sends them
		}
		mm.ReadOnly = m.ReadOnly
		return mm, nil
	}
	return bad("mounts of type %q are not supported by Skiff (bind, volume and tmpfs are)", m.Type)
}
