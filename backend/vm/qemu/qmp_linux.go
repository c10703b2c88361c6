package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// qmp is a minimal QEMU Machine Protocol client: one command at a time,
// events delivered on a channel.
type qmp struct {
	conn   net.Conn
	events chan qmpEvent // buffered; closed when the connection ends

	mu      sync.Mutex // serialises commands; guards nothing else
	replies chan qmpReply
}

type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

var errQMPClosed = errors.New("qmp connection closed")

var noDeadline time.Time

// newQMP reads the greeting, negotiates capabilities and starts the reader.
func newQMP(ctx context.Context, conn net.Conn) (*qmp, error) {
	q := &qmp{conn: conn, events: make(chan qmpEvent, 64), replies: make(chan qmpReply, 1)}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	r := bufio.NewReader(conn)
	var greet struct {
		QMP json.RawMessage `json:"QMP"`
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if err := json.Unmarshal(line, &greet); err != nil || greet.QMP == nil {
		return nil, fmt.Errorf("qmp greeting %q: not QMP", line)
	}
	conn.SetReadDeadline(noDeadline)
	go q.read(r)
	if _, err := q.do(ctx, "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *qmp) read(r *bufio.Reader) {
	defer close(q.events)
	defer close(q.replies)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var probe struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(line, &probe) != nil {
			continue
		}
		if probe.Event != "" {
			var ev qmpEvent
			_ = json.Unmarshal(line, &ev)
			select {
			case q.events <- ev:
			default: // nobody listening fast enough: events are advisory
			}
			continue
		}
		var rep qmpReply
		if json.Unmarshal(line, &rep) == nil {
			q.replies <- rep
		}
	}
}

// do runs one command and returns its "return" value.
func (q *qmp) do(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	return q.doFile(ctx, cmd, args, nil)
}

// doFile runs one command with f's descriptor attached (SCM_RIGHTS), as
// getfd wants it; nil attaches nothing.
func (q *qmp) doFile(ctx context.Context, cmd string, args any, f *os.File) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	data, _ := json.Marshal(req)
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetWriteDeadline(dl)
		defer q.conn.SetWriteDeadline(noDeadline)
	}
	var err error
	if uc, ok := q.conn.(*net.UnixConn); ok && f != nil {
		_, _, err = uc.WriteMsgUnix(append(data, '\n'), unix.UnixRights(int(f.Fd())), nil)
	} else if f != nil {
		err = fmt.Errorf("cannot pass a file on %T", q.conn)
	} else {
		_, err = q.conn.Write(append(data, '\n'))
	}
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	select {
	case rep, ok := <-q.replies:
		if !ok {
			return nil, fmt.Errorf("qmp %s: %w", cmd, errQMPClosed)
		}
		if rep.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, rep.Error.Class, rep.Error.Desc)
		}
		return rep.Return, nil
	case <-ctx.Done():
		// The reply may still come; a later command would read it. Close to keep
		// the protocol in step: callers treat a timed-out QMP as broken.
		q.conn.Close()
		return nil, fmt.Errorf("qmp %s: %w", cmd, ctx.Err())
	}
}

// status is QEMU's run state ("running", "paused", "shutdown", …).
func (q *qmp) status(ctx context.Context) (string, error) {
	raw, err := q.do(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("qmp query-status: %w", err)
	}
	return st.Status, nil
}

func (q *qmp) close() error { return q.conn.Close() }
