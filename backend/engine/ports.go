package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// listenPorts binds every port mapping on the host: a TCP listener, or for UDP a socket wrapped as a
// *udpListener. On failure nothing stays bound. The mappings returned carry the actual host port
// (for HostPort 0).
func listenPorts(ports []PortMapping) ([]net.Listener, []PortMapping, error) {
	var lns []net.Listener
	bound := make([]PortMapping, 0, len(ports))
	for _, p := range ports {
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		var ln net.Listener
		var err error
		if p.Proto == "udp" {
			var ul *udpListener
			if ul, err = listenUDP(addr); err == nil {
				ln = ul
			}
		} else {
			ln, err = net.Listen("tcp", addr)
		}
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, nil, fmt.Errorf("publishing port %d/%s: host address %s is already in use or not available (%v): %w", p.ContainerPort, protoName(p.Proto), addr, unwrapOp(err), ErrConflict)
		}
		lns = append(lns, ln)
		switch a := ln.Addr().(type) {
		case *net.TCPAddr:
			p.HostPort = a.Port
		case *net.UDPAddr:
			p.HostPort = a.Port
		}
		bound = append(bound, p)
	}
	return lns, bound, nil
}

func protoName(proto string) string {
	if proto == "" {
		return "tcp"
	}
	return proto
}

// servePort accepts host connections for one mapping until the listener closes, carrying each over
// an agent stream to the guest port. A UDP mapping relays datagrams instead (serveUDP).
func (c *ctr) servePort(s *supervisor, ln net.Listener, p PortMapping) {
	if ul, ok := ln.(*udpListener); ok {
		c.serveUDP(s, ul, p)
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.forwardConn(s, conn, p.ContainerPort)
		}()
	}
}

func (c *ctr) forwardConn(s *supervisor, conn net.Conn, port int) {
	defer conn.Close()
	b, err := c.currentBoot()
	if err != nil {
		return // restarting or stopping: refuse by closing
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	g, err := b.client.Forward(ctx, port)
	cancel()
	if err != nil {
		c.e.log.Debug("port forward", zapID(c.rec.ID), zapInt("port", port), zapErr(err))
		return
	}
	defer g.Close()
	// End the connection when the boot ends, whatever the peers do.
	stop := context.AfterFunc(s.ctx, func() { conn.Close(); g.Close() })
	defer stop()
	proxy(conn, g)
}

type closeWriter interface{ CloseWrite() error }

var proxyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// proxy copies both ways, passing each side's EOF on as a half-close, and returns when both
// directions are done.
func proxy(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		// Large buffers: each write becomes one agent frame, and fewer frames cost the guest less.
		bp := proxyBufs.Get().(*[]byte)
		_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
		proxyBufs.Put(bp)
		if cw, ok := dst.(closeWriter); ok && err == nil {
			_ = cw.CloseWrite()
		} else {
			// No half-close possible (or the copy failed): end both.
			dst.Close()
			src.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}

// unwrapOp drops the "listen tcp 127.0.0.1:80: " prefix of a *net.OpError: the caller names the
// address already.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
