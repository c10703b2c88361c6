package jsonstr

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func FuzzAppendUnquote(f *testing.F) {
	for _, s := range []string{"", "plain\n", "0123456\"89abcdef\\", "ctl \x00\x01\x1f\x7f\t\r\n", "ünïcødé ✓ </script> \u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		q := Append([]byte("x"), s)[1:]
		if qs := string(Append(nil, []byte(s))); qs != string(q) {
			t.Fatalf("string and []byte forms differ: %q, %q", q, qs)
		}
		var viaJSON string
		if err := json.Unmarshal(q, &viaJSON); err != nil || viaJSON != s {
			t.Fatalf("encoding/json reads %q as %q (%v), want %q", q, viaJSON, err, s)
		}
		got, ok := Unquote([]byte("y"), q[1:len(q)-1])
		if !ok || string(got) != "y"+s {
			t.Fatalf("Unquote(%q) = %q, %v", q, got, ok)
		}
		// Whatever Unquote accepts, it reads as encoding/json does.
		enc, _ := json.Marshal(s)
		if got, ok := Unquote(nil, enc[1:len(enc)-1]); ok && string(got) != s {
			t.Fatalf("Unquote of encoding/json's %q = %q", enc, got)
		}
	})
}

func TestUnquoteRejects(t *testing.T) {
	for _, body := range []string{`a"b`, `a\`, `\b`, `\u0100`, `\u00zz`, `\u00`} {
		if got, ok := Unquote([]byte("keep"), []byte(body)); ok || string(got) != "keep" {
			t.Errorf("Unquote(%q) = %q, %v; want a refusal that leaves dst alone", body, got, ok)
		}
	}
}
