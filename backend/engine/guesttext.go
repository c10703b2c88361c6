package engine

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxGuestText caps a string from the guest kept in a record or an event.
const maxGuestText = 4 << 10

const truncatedMark = " …[truncated]"

// guestText makes a string the guest controls (an agent's error message, a console tail, an exit
// reason) safe to store and print: valid UTF-8, no control or format characters but newline and
// tab (no terminal escapes, no bidi overrides), at most maxGuestText bytes.
func guestText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	if len(s) <= maxGuestText {
		return s
	}
	cut := maxGuestText - len(truncatedMark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncatedMark
}
