//go:build linux

package engine

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// An agent's error message (here the failed exec, quoting the command) reaches the record and the
// "die" event capped and without control characters.
func TestGuestErrorSanitised(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 2*time.Minute)
	evctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := f.e.Events(evctx)
	cmd := "/no/such/\x1b[2J\x1b]0;pwned\a" + strings.Repeat("d/", 3000) + "\xff"
	c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{cmd}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.e.Start(ctx, c.ID); err == nil {
		t.Fatal("start of a missing command succeeded")
	}
	clean := func(what, s string) {
		t.Helper()
		if s == "" || len(s) > maxGuestText || !utf8.ValidString(s) || strings.ContainsAny(s, "\x1b\a\r\x00") {
			t.Errorf("%s not sanitised (%d bytes, valid UTF-8 %v): %q", what, len(s), utf8.ValidString(s), s[:min(len(s), 80)])
		}
	}
	clean("record error", f.inspect(c.ID).Error)
	for ev := range events {
		if ev.Action == "die" && ev.ID == c.ID {
			clean("die event error", ev.Attributes["error"])
			break
		}
	}
}
