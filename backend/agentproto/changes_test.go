package agentproto

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestClientChanges: the changes stream's JSON values, split across Data frames anywhere, come
// back in order; an Error frame mid-stream is the call's error (the agent's code kept), a
// refusal before OK too, and bytes that are not JSON are ErrMalformed.
func TestClientChanges(t *testing.T) {
	ctx := context.Background()
	want := []Change{{"/etc", ChangeModified}, {"/etc/group", ChangeDeleted}, {"/srv/a b\n", ChangeAdded}}
	var body strings.Builder
	for _, ch := range want {
		fmt.Fprintf(&body, `{"Path":%q,"Kind":%q}`+"\n", ch.Path, ch.Kind)
	}
	cl := fakeAgent(t, ProtocolVersion, func(c *Conn, req Request) {
		if req.Op != OpChanges {
			c.Send(Error{Code: CodeUnknownOperation, Message: req.Op})
			return
		}
		c.Send(OK{})
		b := body.String()
		for len(b) > 0 { // frames of 7 bytes: values split anywhere
			n := min(7, len(b))
			c.SendBytes(TypeData, []byte(b[:n]))
			b = b[n:]
		}
		c.Send(DataEOF{})
	})
	got, err := cl.Changes(ctx)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Changes: %v %v, want %v", got, err, want)
	}

	broken := fakeAgent(t, ProtocolVersion, func(c *Conn, req Request) {
		c.Send(OK{})
		c.SendBytes(TypeData, []byte(`{"Path":"/a","Kind":"A"}`+"\n"))
		c.Send(ErrorMessage(fmt.Errorf("changes: reading /x: %w", ErrInternal)))
	})
	if _, err := broken.Changes(ctx); err == nil || !strings.Contains(err.Error(), "reading /x") {
		t.Errorf("an Error mid-stream: %v", err)
	}
	refused := fakeAgent(t, ProtocolVersion, func(c *Conn, req Request) {
		c.Send(ErrorMessage(fmt.Errorf("changes: the container root is not on disks: %w", ErrNotSupported)))
	})
	if _, err := refused.Changes(ctx); !errors.Is(err, ErrNotSupported) {
		t.Errorf("a refusal: %v, want ErrNotSupported", err)
	}
	garbage := fakeAgent(t, ProtocolVersion, func(c *Conn, req Request) {
		c.Send(OK{})
		c.SendBytes(TypeData, []byte("not json"))
		c.Send(DataEOF{})
	})
	if _, err := garbage.Changes(ctx); !errors.Is(err, ErrMalformed) {
		t.Errorf("not JSON: %v, want ErrMalformed", err)
	}
}
