package agentproto

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Copy operations: `docker cp` on the container's root as the guest sees it (the overlay of its
// disks), for a root the host cannot read.
//
//	copystat  Request.Copy.Path            → OK{Path}
//	copyfrom  Request.Copy.Path            → OK{Path}, Data… (a tar of the path), DataEOF; an Error ends a
//	                                         stream that broke
//	copyto    Request.Copy{Path: dir, …}   → OK (dir is a directory), then the host sends Data… (a tar the
//	                                         host has checked), DataEOF; the agent answers OK once it is
//	                                         unpacked, or Error
const (
	OpCopyStat = "copystat"
	OpCopyFrom = "copyfrom"
	OpCopyTo   = "copyto"
)

// CopySpec names the path of a copy operation.
type CopySpec struct {
	Path string
	// NoOverwriteDirNonDir (copyto) refuses to replace a directory with a non-directory or the reverse.
	NoOverwriteDirNonDir bool `json:",omitempty"`
}

// PathStat describes one path in the container, a final symlink not followed.
type PathStat struct {
	Name       string
	Size       int64
	Mode       uint32 // io/fs.FileMode bits
	Mtime      time.Time
	LinkTarget string `json:",omitempty"` // a symlink's target, resolved in the container
}

// CopyStat describes path in the container root.
func (c *Client) CopyStat(ctx context.Context, path string) (*PathStat, error) {
	_, ok, err := c.call(ctx, Request{Op: OpCopyStat, Copy: &CopySpec{Path: path}})
	if err != nil {
		return nil, err
	}
	if ok.Path == nil {
		return nil, fmt.Errorf("agent %s: no stat in the reply: %w", OpCopyStat, ErrMalformed)
	}
	return ok.Path, nil
}

// CopyFrom returns a tar of path in the container root (`docker cp` out) and path's stat. The
// reader fails with the agent's error if the archive breaks off; ctx bounds the request only.
func (c *Client) CopyFrom(ctx context.Context, path string) (io.ReadCloser, *PathStat, error) {
	conn, _, ok, err := c.open(ctx, Request{Op: OpCopyFrom, Copy: &CopySpec{Path: path}})
	if err != nil {
		return nil, nil, err
	}
	if ok.Path == nil {
		conn.Close()
		return nil, nil, fmt.Errorf("agent %s: no stat in the reply: %w", OpCopyFrom, ErrMalformed)
	}
	return &dataReader{conn: conn, op: OpCopyFrom}, ok.Path, nil
}

// CopyTo unpacks the tar r into directory dir of the container root (`docker cp` in). The host
// checks the archive first; the agent unpacks it beneath dir, no path leaving the root.
func (c *Client) CopyTo(ctx context.Context, dir string, noOverwriteDirNonDir bool, r io.Reader) error {
	conn, _, _, err := c.open(ctx, Request{Op: OpCopyTo, Copy: &CopySpec{Path: dir, NoOverwriteDirNonDir: noOverwriteDirNonDir}})
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 256<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := conn.SendBytes(TypeData, buf[:n]); err != nil {
				return c.copyToErr(ctx, conn, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("agent %s: reading the archive: %w", OpCopyTo, rerr)
		}
	}
	if err := conn.Send(DataEOF{}); err != nil {
		return c.copyToErr(ctx, conn, err)
	}
	return c.copyToErr(ctx, conn, nil)
}

// copyToErr reads the agent's verdict (it may have answered early, refusing the archive).
func (c *Client) copyToErr(ctx context.Context, conn *Conn, sendErr error) error {
	m, err := conn.Recv()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if sendErr != nil {
			return fmt.Errorf("agent %s: %w", OpCopyTo, sendErr)
		}
		return fmt.Errorf("agent %s: %w", OpCopyTo, eofToClosed(err))
	}
	switch v := m.(type) {
	case OK:
		return nil
	case Error:
		return &RemoteError{Op: OpCopyTo, Code: v.Code, Message: v.Message}
	}
	return fmt.Errorf("agent %s: got %s instead of a reply: %w", OpCopyTo, m.Type(), ErrMalformed)
}

// dataReader reads Data frames until DataEOF; an Error frame is the read's error.
type dataReader struct {
	conn *Conn
	op   string
	cur  []byte
	err  error
}

func (d *dataReader) Read(p []byte) (int, error) {
	for len(d.cur) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		m, err := d.conn.Recv()
		if err != nil {
			d.err = fmt.Errorf("agent %s: %w", d.op, eofToClosed(err))
			continue
		}
		switch v := m.(type) {
		case Data:
			d.cur = v
		case DataEOF:
			d.err = io.EOF
		case Error:
			d.err = &RemoteError{Op: d.op, Code: v.Code, Message: v.Message}
		default:
			d.err = fmt.Errorf("agent %s: got %s in a data stream: %w", d.op, m.Type(), ErrMalformed)
		}
	}
	n := copy(p, d.cur)
	d.cur = d.cur[n:]
	return n, nil
}

func (d *dataReader) Close() error { return d.conn.Close() }
