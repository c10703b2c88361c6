package agentproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// OpChanges lists the changes of the container root against its image (`docker diff`): the
// overlay's upper directory of a root on disks.
//
//	changes  Request{}  → OK, Data… (one JSON Change after another), DataEOF; an Error ends a
//	                      stream that broke. An agent without a disk root answers not_supported.
const OpChanges = "changes"

// Change kinds, as `docker diff` prints them.
const (
	ChangeModified = "C"
	ChangeAdded    = "A"
	ChangeDeleted  = "D"
)

// Change is one changed path of the container root (absolute, as the container sees it).
type Change struct {
	Path string
	Kind string // ChangeModified, ChangeAdded or ChangeDeleted
}

// Changes returns the changes of the container root against its image, in path order (a
// directory before what is in it).
func (c *Client) Changes(ctx context.Context) ([]Change, error) {
	conn, _, _, err := c.open(ctx, Request{Op: OpChanges})
	if err != nil {
		return nil, err
	}
	r := &dataReader{conn: conn, op: OpChanges}
	defer r.Close()
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	var out []Change
	dec := json.NewDecoder(r)
	for {
		var ch Change
		err := dec.Decode(&ch)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var syn *json.SyntaxError
			var typ *json.UnmarshalTypeError
			if errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("agent %s: %v: %w", OpChanges, err, ErrMalformed)
			}
			return nil, err // the stream's: already names the operation
		}
		out = append(out, ch)
	}
}
