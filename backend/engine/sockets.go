package engine

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// dockerSocketAliases are where Docker clients look for the daemon's socket: a bind mount of one
// of them means the engine's own Docker socket (Config.DockerSocket), whatever DOCKER_HOST says.
var dockerSocketAliases = []string{"/var/run/docker.sock", "/run/docker.sock"}

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

// splitSockets moves the bind mounts of the Docker socket out of o.Mounts into o.Sockets (their
// container paths): those are never shared as files, the agent makes a socket there instead.
func (e *Engine) splitSockets(o *CreateOptions) error {
	var rest []Mount
	seen := map[string]bool{}
	for _, t := range o.Sockets {
		if !filepath.IsAbs(t) || filepath.Clean(t) == "/" {
			return fmt.Errorf("docker socket target %q: must be an absolute path and not /: %w", t, ErrInvalid)
		}
		seen[filepath.Clean(t)] = true
	}
	for _, m := range o.Mounts {
		if !e.isDockerSocket(m.Source) {
			rest = append(rest, m)
			continue
		}
		if !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
			return fmt.Errorf("bind mount %s:%s: the container path must be absolute and not /: %w", m.Source, m.Target, ErrInvalid)
		}
		t := filepath.Clean(m.Target)
		if seen[t] {
			return fmt.Errorf("bind mount target %s given twice: %w", t, ErrInvalid)
		}
		seen[t] = true
		o.Sockets = append(o.Sockets, t)
	}
	for _, m := range rest {
		if seen[filepath.Clean(m.Target)] {
			return fmt.Errorf("bind mount target %s given twice: %w", m.Target, ErrInvalid)
		}
	}
	o.Mounts = rest
	return nil
}

// refuseSocket is validateMounts' answer to a unix socket source other than the Docker socket.
func refuseSocket(m Mount, fi os.FileInfo) error {
	if fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	return fmt.Errorf("bind mount source %s is a unix socket: only the Docker socket (the engine's docker.sock, "+
		"or /var/run/docker.sock) can be bind-mounted into a container, other sockets are not carried: %w", m.Source, ErrNotSupported)
}

// listenSockets has the agent make each Docker socket of the container (targets) and carries
// each connection made to one to the engine's Docker socket, for as long as the channel lasts.
func (c *ctr) listenSockets(ctx context.Context, client *agentproto.Client, targets []string) error {
	for _, t := range targets {
		l, err := client.ListenUnix(ctx, t)
		if err != nil {
			return fmt.Errorf("making the Docker socket at %s: %w", t, err)
		}
		go c.serveSocket(l)
	}
	return nil
}

func (c *ctr) serveSocket(l net.Listener) {
	defer l.Close()
	for {
		g, err := l.Accept()
		if err != nil {
			c.e.log.Debug("docker socket in the container closed", zapID(c.rec.ID), zapErr(err))
			return
		}
		go func() {
			defer g.Close()
			path := c.e.cfg.DockerSocket
			if path == "" {
				return // an engine that serves no Docker socket: refuse by closing
			}
			d, err := (&net.Dialer{}).Dial("unix", path)
			if err != nil {
				c.e.log.Warn("docker socket of a container", zapStr("socket", path), zapErr(err))
				return
			}
			defer d.Close()
			proxy(g, d)
		}()
	}
}
