package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// dockerSocketAliases are where Docker clients look for the daemon's socket: a bind mount of one
// of them means the engine's own Docker socket (Config.DockerSocket), whatever DOCKER_HOST says.
var dockerSocketAliases = []string{"/var/run/docker.sock", "/run/docker.sock"}

// socketDialTimeout bounds one connection to a host socket for a guest's connection.
const socketDialTimeout = 30 * time.Second

// isDockerSocket says whether src, a bind mount source, names the engine's Docker socket.
func (e *Engine) isDockerSocket(src string) bool {
	if e.cfg.DockerSocket == "" || !filepath.IsAbs(src) {
		return false
	}
	src = filepath.Clean(src)
	if src == filepath.Clean(e.cfg.DockerSocket) || slices.Contains(dockerSocketAliases, src) {
		return true
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return false
	}
	own, err := filepath.EvalSymlinks(e.cfg.DockerSocket)
	return err == nil && real == own
}

// isSocket says whether src, a bind mount source, is a unix socket on the host (links followed).
func isSocket(src string) bool {
	if !filepath.IsAbs(src) {
		return false
	}
	fi, err := os.Stat(src)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// splitSockets moves the bind mounts of unix sockets (the Docker socket and any other host socket)
// out of o.Mounts into o.SocketBinds: those are never shared as files, the agent makes a socket at
// the target instead. A host socket's source is pinned (SocketBind.Real) as a folder's is.
func (e *Engine) splitSockets(o *CreateOptions) error {
	var rest []Mount
	seen := map[string]bool{}
	claim := func(t string) error {
		if !filepath.IsAbs(t) || filepath.Clean(t) == "/" {
			return fmt.Errorf("socket target %q: must be an absolute path and not /: %w", t, ErrInvalid)
		}
		if seen[filepath.Clean(t)] {
			return fmt.Errorf("bind mount target %s given twice: %w", filepath.Clean(t), ErrInvalid)
		}
		seen[filepath.Clean(t)] = true
		return nil
	}
	for _, t := range o.Sockets {
		if err := claim(t); err != nil {
			return err
		}
	}
	binds := o.SocketBinds
	o.SocketBinds = nil
	for _, m := range o.Mounts {
		if (m.Type != "" && m.Type != MountBind) || (!e.isDockerSocket(m.Source) && !isSocket(m.Source)) {
			rest = append(rest, m)
			continue
		}
		binds = append(binds, SocketBind{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Real: m.Real})
	}
	for _, b := range binds {
		if !filepath.IsAbs(b.Target) || filepath.Clean(b.Target) == "/" {
			return fmt.Errorf("bind mount %s:%s: the container path must be absolute and not /: %w", b.Source, b.Target, ErrInvalid)
		}
		if err := claim(b.Target); err != nil {
			return err
		}
		b.Target = filepath.Clean(b.Target)
		if !filepath.IsAbs(b.Source) {
			return fmt.Errorf("bind mount %s:%s: the host path must be absolute: %w", b.Source, b.Target, ErrInvalid)
		}
		b.Source = filepath.Clean(b.Source)
		if b.Docker || e.isDockerSocket(b.Source) {
			b.Docker, b.Real = true, ""
		} else {
			real, err := pinSocket(b.Source, b.Real)
			if err != nil {
				return err
			}
			b.Real = real
		}
		o.SocketBinds = append(o.SocketBinds, b)
	}
	for _, m := range rest {
		if seen[filepath.Clean(m.Target)] {
			return fmt.Errorf("bind mount target %s given twice: %w", m.Target, ErrInvalid)
		}
	}
	o.Mounts = rest
	return nil
}

// pinSocket resolves src, a host socket given as a bind source, to the path each connection will
// open (its symbolic links resolved). pinned, when set (a recreate, or a start), is what an
// earlier create resolved: src must still resolve to it, and it must hold a socket and no link.
func pinSocket(src, pinned string) (string, error) {
	fi, err := os.Stat(src)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("bind mount source %s does not exist: %w", src, ErrInvalid)
	}
	if err != nil {
		return "", fmt.Errorf("bind mount source %s: %v: %w", src, err, ErrInvalid)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return "", fmt.Errorf("bind mount source %s is no longer a unix socket: %w", src, ErrInvalid)
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", fmt.Errorf("bind mount source %s: %v: %w", src, err, ErrInvalid)
	}
	if pinned != "" && real != pinned {
		return "", fmt.Errorf("bind mount source %s now resolves to %s, not to %s as when the container was created "+
			"(a symbolic link is in its path; recreate the container to give it the new socket): %w", src, real, pinned, ErrInvalid)
	}
	if again, err := filepath.EvalSymlinks(real); err != nil || again != real {
		return "", fmt.Errorf("bind mount source %s: its pinned path %s now holds a symbolic link: %w", src, real, ErrInvalid)
	}
	if fi, err := os.Lstat(real); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return "", fmt.Errorf("bind mount source %s is no longer a unix socket: %w", src, ErrInvalid)
	}
	return real, nil
}

// checkSocketBinds is Start's check of the pinned host sockets (SocketBind.Real) of a record.
func checkSocketBinds(binds []SocketBind) error {
	for _, b := range binds {
		if b.Docker {
			continue
		}
		if b.Real == "" {
			return fmt.Errorf("bind mount source %s: no pinned socket path in the record: %w", b.Source, ErrInvalid)
		}
		if _, err := pinSocket(b.Source, b.Real); err != nil {
			return err
		}
	}
	return nil
}

// refuseSocket is validateMounts' answer to a unix socket source: AddMount's (Create moves them
// to SocketBinds before).
func refuseSocket(m Mount, fi os.FileInfo) error {
	if fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	return fmt.Errorf("bind mount source %s is a unix socket: a socket is given to a container when it is created, "+
		"not added later: %w", m.Source, ErrNotSupported)
}

// listenSockets has the agent make each socket of the container (the Docker socket's targets in
// Sockets, and every SocketBinds target) and carries each connection made to one to its host
// socket, for as long as the channel lasts.
func (c *ctr) listenSockets(ctx context.Context, client *agentproto.Client, cfg CreateOptions) error {
	binds := slices.Clone(cfg.SocketBinds)
	for _, t := range cfg.Sockets {
		binds = append(binds, SocketBind{Target: t, Docker: true})
	}
	for _, b := range binds {
		l, err := client.ListenUnix(ctx, b.Target)
		if err != nil {
			return fmt.Errorf("making the socket at %s: %w", b.Target, err)
		}
		go c.serveSocket(l, b)
	}
	return nil
}

// serveSocket carries each connection accepted on l, the guest's socket of b, to b's host socket.
func (c *ctr) serveSocket(l net.Listener, b SocketBind) {
	defer l.Close()
	for {
		g, err := l.Accept()
		if err != nil {
			c.e.log.Debug("socket in the container closed", zapID(c.rec.ID), zapStr("target", b.Target), zapErr(err))
			return
		}
		go func() {
			defer g.Close()
			ctx, cancel := context.WithTimeout(context.Background(), socketDialTimeout)
			defer cancel()
			var d net.Conn
			var err error
			if b.Docker {
				path := c.e.cfg.DockerSocket
				if path == "" {
					return // an engine that serves no Docker socket: refuse by closing
				}
				d, err = (&net.Dialer{}).DialContext(ctx, "unix", path)
			} else {
				d, err = dialPinnedSocket(ctx, b.Real)
			}
			if err != nil {
				c.e.log.Warn("a socket of a container: the host socket refused the connection", zapID(c.rec.ID),
					zapStr("target", b.Target), zapStr("source", b.Source), zapErr(err))
				return
			}
			defer d.Close()
			proxy(g, d)
		}()
	}
}
