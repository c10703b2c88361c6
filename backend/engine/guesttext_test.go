package engine

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGuestText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                        "plain",
		"two\nlines\tand tab":          "two\nlines\tand tab",
		"\x1b[31mred\x1b[0m\a":         "[31mred[0m",
		"bad \xff\xfe utf8":            "bad \uFFFD utf8",
		"cr\r\nnul\x00del\x7fc1\u0085": "cr\nnuldelc1",
		"bidi \u202egnp.exe\u202c":     "bidi gnp.exe",
		"keeps é, 漢字 and emoji 🙂 too":  "keeps é, 漢字 and emoji 🙂 too",
	} {
		if got := guestText(in); got != want {
			t.Errorf("guestText(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("é", 3000) // 6000 bytes
	got := guestText(long)
	if len(got) > maxGuestText || !utf8.ValidString(got) || !strings.HasSuffix(got, truncatedMark) || !strings.HasPrefix(got, "éé") {
		t.Errorf("a 6000-byte text became %d bytes (valid UTF-8 %v): ...%q", len(got), utf8.ValidString(got), got[len(got)-20:])
	}
}
