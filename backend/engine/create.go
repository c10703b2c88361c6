package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/images/disk"
)

// DefaultStorageSize is the size of a container's writable disk unless --storage-opt size= says
// otherwise. The disk is a sparse file: it costs the host only what the container writes, so the
// size is only a ceiling, and a ceiling of tens of GB is what users of Docker Desktop expect to
// have (its whole VM disk defaults to 64 GB, shared by every container). Formatting it writes
// about 1 MiB (bitmaps of its 256 block groups).
const DefaultStorageSize int64 = 32 << 30

// upperDiskFile is the writable disk's name in the container's directory.
const upperDiskFile = "upper.ext4"

// Create validates opts, ensures the image (pulling per opts.Pull) and its disk, resolves the
// workload with Docker's rules, makes the container's writable disk (an empty sparse ext4 of
// opts.StorageSize) and writes the record. Bad input fails before anything is made: no record, no
// directory, no listener; a failure after that removes what was made.
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (*Container, error) {
	if e.images == nil {
		return nil, fmt.Errorf("creating container: engine has no image store: %w", ErrInvalid)
	}
	o := opts
	o.Labels = copyLabels(opts.Labels)
	o.Mounts, o.Sockets, o.SocketBinds = slices.Clone(opts.Mounts), slices.Clone(opts.Sockets), slices.Clone(opts.SocketBinds)
	if err := e.splitSockets(&o); err != nil {
		return nil, err
	}
	if err := validateCreate(&o, e.cfg.HostIP); err != nil {
		return nil, err
	}

	id := NewID()
	name, release, err := e.reserveName(o.Name, id)
	if err != nil {
		return nil, err
	}
	o.Name = name
	committed := false
	defer func() {
		if !committed {
			release()
		}
	}()

	eps, releaseNets, err := e.createEndpoints(id, name, o.Networks)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !committed {
			releaseNets()
		}
	}()
	img, err := e.ensureImage(ctx, o.Image, images.PullOptions{Policy: o.Pull, Platform: o.Platform})
	if err != nil {
		return nil, err
	}
	proc, err := resolveProcess(id, &o, &img.Config)
	if err != nil {
		return nil, fmt.Errorf("container from %s: %w", o.Image, err)
	}
	imageDisk, err := e.images.Disk(ctx, img.ID, e.pullProgress(o.Image, nil))
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", o.Image, err)
	}

	mounts, release, undoVolumes, err := e.attachVolumes(ctx, o.Mounts, img)
	if err != nil {
		return nil, fmt.Errorf("container from %s: %w", o.Image, err)
	}
	defer release() // once the record holds them, or they are gone
	o.Mounts = mounts
	dir := e.containerDir(id)
	rec := Container{
		ID: id, Name: name, Image: o.Image, ImageID: img.ID, Platform: img.Platform, State: StateCreated,
		Config: o, Process: proc, Created: time.Now().UTC(), Ports: append([]PortMapping(nil), o.Ports...),
		Mounts: append([]Mount(nil), o.Mounts...), MAC: macFor(id), Networks: eps,
		ImageDisk: imageDisk, UpperDisk: filepath.Join(dir, upperDiskFile), LogPath: filepath.Join(e.logDir(id), logFileName),
	}
	if err := os.MkdirAll(e.logDir(id), 0o700); err != nil {
		undoVolumes()
		return nil, fmt.Errorf("creating container dir: %w", err)
	}
	cleanup := func() { _ = removeAll(dir); undoVolumes() }
	if err := syncDir(filepath.Dir(dir)); err != nil { // the new entry in containers/
		cleanup()
		return nil, fmt.Errorf("creating container dir: %w", err)
	}
	if err := disk.FormatEmpty(rec.UpperDisk, o.StorageSize); err != nil {
		cleanup()
		return nil, fmt.Errorf("creating the writable disk of %s: %w", name, err)
	}
	if err := e.saveRecord(&rec); err != nil {
		cleanup()
		return nil, err
	}
	c := newCtr(e, rec)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		cleanup()
		return nil, ErrClosed
	}
	e.ctrs[id] = c
	e.mu.Unlock()
	e.setLabels(id, o.Labels)
	committed = true
	e.log.Debug("created container", zapID(id), zap.String("name", name), zap.String("image", o.Image))
	e.emit("container", "create", id, name, map[string]string{"image": o.Image})
	out := c.snapshot()
	return &out, nil
}

// validateCreate checks every option that can be checked without the image, filling defaults.
func validateCreate(o *CreateOptions, defaultIP string) error {
	if o.Image == "" {
		return fmt.Errorf("an image is required: %w", ErrInvalid)
	}
	if o.Name != "" {
		if err := ValidName(o.Name); err != nil {
			return err
		}
		o.Name = trimSlash(o.Name)
	}
	if o.Hostname != "" {
		if err := ValidHostname(o.Hostname); err != nil {
			return err
		}
	}
	switch o.Pull {
	case "":
		o.Pull = images.PullPolicy("missing")
	case "always", "missing", "never":
	default:
		return fmt.Errorf("pull policy %q: want always, missing or never: %w", o.Pull, ErrInvalid)
	}
	if o.CPUs < 0 || math.IsNaN(o.CPUs) || o.CPUs > 256 {
		return fmt.Errorf("cpus %v: want a number between 0 and 256: %w", o.CPUs, ErrInvalid)
	}
	if o.Memory != 0 && (o.Memory < MinMemory || o.Memory > 1<<40) {
		return fmt.Errorf("memory %d bytes: want at least %d MiB and at most 1 TiB: %w", o.Memory, MinMemory>>20, ErrInvalid)
	}
	if o.StorageSize == 0 {
		o.StorageSize = DefaultStorageSize
	}
	if o.StorageSize < disk.MinWritableSize || o.StorageSize > disk.MaxWritableSize {
		return fmt.Errorf("storage size %d bytes: want at least %d MiB and at most %d TiB: %w",
			o.StorageSize, disk.MinWritableSize>>20, disk.MaxWritableSize>>40, ErrInvalid)
	}
	if o.Restart.Name == "" {
		o.Restart.Name = "no"
	}
	if _, err := ParseRestartPolicy(o.Restart.Name); err != nil {
		return err
	}
	if o.Restart.MaximumRetryCount < 0 || (o.Restart.MaximumRetryCount > 0 && o.Restart.Name != "on-failure") {
		return fmt.Errorf("restart policy %s: a retry count is only for on-failure and must be >= 0: %w", o.Restart.Name, ErrInvalid)
	}
	if o.AutoRemove && o.Restart.Name != "no" {
		return fmt.Errorf("conflicting options: restart policy %q and auto-remove (--rm): %w", o.Restart.Name, ErrInvalid)
	}
	if err := validateNetworks(o.Networks); err != nil {
		return err
	}
	if o.StopSignal != "" {
		if _, err := ParseSignal(o.StopSignal); err != nil {
			return fmt.Errorf("stop signal: %w", err)
		}
	}
	if o.StopTimeout != nil && *o.StopTimeout < -1 {
		return fmt.Errorf("stop timeout %d: %w", *o.StopTimeout, ErrInvalid)
	}
	if err := validateHealth(o.Healthcheck); err != nil {
		return err
	}
	if err := validatePorts(o.Ports, defaultIP); err != nil {
		return err
	}
	return validateMounts(o.Mounts)
}

func validatePorts(ports []PortMapping, defaultIP string) error {
	seen := map[string]bool{}
	for i := range ports {
		p := &ports[i]
		if p.Proto == "" {
			p.Proto = "tcp"
		}
		desc := fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Proto)
		if p.Proto != "tcp" && p.Proto != "udp" {
			return fmt.Errorf("port %s: unknown protocol %q: %w", desc, p.Proto, ErrInvalid)
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
			return fmt.Errorf("port %s: ports must be 1-65535: %w", desc, ErrInvalid)
		}
		if p.HostIP == "" {
			p.HostIP = defaultIP
		}
		if p.HostIP != "localhost" && net.ParseIP(p.HostIP) == nil {
			return fmt.Errorf("port %s: host address %q is not an IP address: %w", desc, p.HostIP, ErrInvalid)
		}
		if p.HostPort == 0 {
			continue
		}
		key := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		if seen[key+"/"+p.Proto] { // 53/tcp and 53/udp may share a host port
			return fmt.Errorf("port %s: host port %s given twice: %w", desc, key, ErrInvalid)
		}
		seen[key+"/"+p.Proto] = true
		// Fail early when the port is taken; Start binds it for real.
		var ln io.Closer
		var err error
		if p.Proto == "udp" {
			ln, err = net.ListenPacket("udp", key)
		} else {
			ln, err = net.Listen("tcp", key)
		}
		if err != nil {
			return fmt.Errorf("port %s: host port %s is already in use or not available (%v): %w", desc, key, unwrapOp(err), ErrConflict)
		}
		ln.Close()
	}
	return nil
}

func validateMounts(mounts []Mount) error {
	targets := map[string]bool{}
	for i := range mounts {
		m := &mounts[i]
		if m.Type == MountVolume || m.Type == MountTmpfs {
			if err := validateOther(m); err != nil {
				return err
			}
			if targets[m.Target] {
				return fmt.Errorf("mount target %s given twice: %w", m.Target, ErrInvalid)
			}
			targets[m.Target] = true
			continue
		}
		if m.Type != "" && m.Type != MountBind {
			return fmt.Errorf("mount at %s: unknown type %q (want bind, volume or tmpfs): %w", m.Target, m.Type, ErrInvalid)
		}
		m.Type = MountBind
		if !filepath.IsAbs(m.Source) {
			return fmt.Errorf("bind mount %s:%s: the host path must be absolute: %w", m.Source, m.Target, ErrInvalid)
		}
		if !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
			return fmt.Errorf("bind mount %s:%s: the container path must be absolute and not /: %w", m.Source, m.Target, ErrInvalid)
		}
		m.Source, m.Target = filepath.Clean(m.Source), filepath.Clean(m.Target)
		fi, err := os.Stat(m.Source)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bind mount source %s does not exist: %w", m.Source, ErrInvalid)
		}
		if err != nil {
			return fmt.Errorf("bind mount source %s: %v: %w", m.Source, err, ErrInvalid)
		}
		if err := refuseSocket(*m, fi); err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("bind mount source %s is not a directory (single files cannot be shared): %w", m.Source, ErrNotSupported)
		}
		real, err := filepath.EvalSymlinks(m.Source)
		if err != nil {
			return fmt.Errorf("bind mount source %s: %v: %w", m.Source, err, ErrInvalid)
		}
		if m.Real != "" && real != m.Real { // a recreate: the source as its first create pinned it
			return fmt.Errorf("bind mount source %s now resolves to %s, not to %s as when the container was first created "+
				"(a symbolic link is in its path; mount it anew to share it): %w", m.Source, real, m.Real, ErrInvalid)
		}
		m.Real = real
		if targets[m.Target] {
			return fmt.Errorf("bind mount target %s given twice: %w", m.Target, ErrInvalid)
		}
		targets[m.Target] = true
	}
	return nil
}

// validateOther checks a volume or tmpfs mount.
func validateOther(m *Mount) error {
	if !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
		return fmt.Errorf("%s mount at %q: the container path must be absolute and not /: %w", m.Type, m.Target, ErrInvalid)
	}
	m.Target = filepath.Clean(m.Target)
	if m.Type == MountTmpfs {
		if m.Source != "" || m.Name != "" {
			return fmt.Errorf("tmpfs mount at %s: a tmpfs has no source: %w", m.Target, ErrInvalid)
		}
		if m.TmpfsSize < 0 || m.TmpfsMode > 0o7777 {
			return fmt.Errorf("tmpfs mount at %s: size %d or mode %o out of range: %w", m.Target, m.TmpfsSize, m.TmpfsMode, ErrInvalid)
		}
		return nil
	}
	if m.Name != "" {
		if err := ValidVolumeName(m.Name); err != nil {
			return err
		}
	}
	m.Source, m.Real = "", "" // the volume's directory, which Create sets
	return nil
}

// pinnedMounts is mounts with each Source replaced by the directory to share: the source as
// resolved at create (Mount.Real). A source that resolves elsewhere now, or whose pinned path has
// gained a symbolic link, is refused: the link may have been planted by a guest that can write
// the folder around it, to expose another host directory.
func pinnedMounts(mounts []Mount) ([]Mount, error) {
	out := make([]Mount, len(mounts))
	for i, m := range mounts {
		if m.Type == MountTmpfs {
			out[i] = m
			continue
		}
		real := m.Real
		if real == "" { // a record from before sources were pinned: pinned at this start
			real = m.Source
		}
		changed := func(now string) error {
			return fmt.Errorf("bind mount source %s now resolves to %s, not to %s as when the container was created "+
				"(a symbolic link is in its path; recreate the container to share it): %w", m.Source, now, real, ErrInvalid)
		}
		now, err := filepath.EvalSymlinks(m.Source)
		if err != nil {
			return nil, fmt.Errorf("bind mount source %s: %v: %w", m.Source, err, ErrInvalid)
		}
		if m.Real == "" {
			real = now
		}
		if now != real {
			return nil, changed(now)
		}
		if again, err := filepath.EvalSymlinks(real); err != nil || again != real {
			return nil, changed(again)
		}
		if fi, err := os.Lstat(real); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("bind mount source %s is no longer a directory: %w", m.Source, ErrInvalid)
		}
		m.Source, m.Real = real, real
		out[i] = m
	}
	return out, nil
}

// reserveName claims name (or a generated one) for id; release gives it back.
func (e *Engine) reserveName(name, id string) (string, func(), error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", nil, ErrClosed
	}
	if name == "" {
		name = generateName(func(n string) bool { _, ok := e.names[n]; return ok })
	} else if other, ok := e.names[name]; ok {
		return "", nil, fmt.Errorf("the container name %q is already in use by container %s: %w", name, ShortID(other), ErrConflict)
	}
	e.names[name] = id
	return name, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.names[name] == id {
			delete(e.names, name)
		}
	}, nil
}

// ensureImage makes the image available per the pull policy, reporting pull progress as events.
func (e *Engine) ensureImage(ctx context.Context, ref string, po images.PullOptions) (*images.Image, error) {
	inner := po.Progress
	po.Progress = e.pullProgress(ref, inner)
	img, err := e.images.Ensure(ctx, ref, po)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	return img, nil
}

// Pull pulls an image, emitting "pull" progress events and a final "pull" event.
func (e *Engine) Pull(ctx context.Context, ref string, po images.PullOptions) (*images.Image, error) {
	if e.images == nil {
		return nil, fmt.Errorf("pulling %q: engine has no image store: %w", ref, ErrInvalid)
	}
	po.Progress = e.pullProgress(ref, po.Progress)
	img, err := e.images.Pull(ctx, ref, po)
	if err != nil {
		return nil, fmt.Errorf("pulling %q: %w", ref, err)
	}
	e.emit("image", "pull", img.ID, ref, map[string]string{"digest": img.Digest})
	return img, nil
}

// pullProgress forwards progress to inner and emits a "pull-progress" event whenever a layer's
// status changes (not every byte, so the event stream stays small).
func (e *Engine) pullProgress(ref string, inner func(images.Progress)) func(images.Progress) {
	last := map[string]string{}
	var mu sync.Mutex
	return func(p images.Progress) {
		if inner != nil {
			inner(p)
		}
		mu.Lock()
		changed := last[p.Layer] != p.Status
		last[p.Layer] = p.Status
		mu.Unlock()
		if changed {
			e.emit("image", "pull-progress", p.Layer, ref, map[string]string{
				"status": p.Status, "done": strconv.FormatInt(p.Done, 10), "total": strconv.FormatInt(p.Total, 10),
			})
		}
	}
}

func copyLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}
