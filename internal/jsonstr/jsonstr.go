// Package jsonstr writes and reads JSON strings by hand, for the log pipeline's hot paths where
// encoding/json's reflection and validation passes cost more than the copying itself. It handles
// what its own Append writes; callers fall back to encoding/json for anything else.
//
//	b = jsonstr.Append(b, "line\n")      // "line\n" quoted: "line\\n"
//	s, ok := jsonstr.Unquote(nil, b[1:len(b)-1])
package jsonstr

import (
	"bytes"
)

// Append appends s, which must be valid UTF-8, as a quoted JSON string. It escapes '"', '\\' and
// control characters only (encoding/json also escapes <, > and &, which JSON does not require).
func Append[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !needsEscape8(load8(s[i:])) {
			i += 8
			continue
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func load8[T string | []byte](s T) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// needsEscape8 reports whether one of the 8 bytes in x is a control character, '"' or '\\'
// (bytes of 0x80 and above, parts of UTF-8 sequences, never are).
func needsEscape8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	below20 := (x - 0x20*ones) & ^x & highs
	return below20|hasZero(x^('"'*ones))|hasZero(x^('\\'*ones)) != 0
}

// Unquote appends the value of the JSON string whose text between the quotes is body to dst. It
// reports false for an unescaped quote and for escapes Append does not write other than \/ and
// \uXXXX below 0x80 (\b, \f, other \u escapes): decode those with encoding/json.
func Unquote(dst, body []byte) ([]byte, bool) {
	start := len(dst)
	for len(body) > 0 {
		j := bytes.IndexByte(body, '\\')
		if j < 0 {
			j = len(body)
		}
		if bytes.IndexByte(body[:j], '"') >= 0 {
			return dst[:start], false
		}
		dst = append(dst, body[:j]...)
		if j == len(body) {
			break
		}
		if j+1 >= len(body) {
			return dst[:start], false
		}
		switch c := body[j+1]; c {
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'u':
			if j+6 > len(body) || body[j+2] != '0' || body[j+3] != '0' {
				return dst[:start], false
			}
			hi, lo := unhex(body[j+4]), unhex(body[j+5])
			if hi < 0 || lo < 0 || hi > 7 {
				return dst[:start], false
			}
			dst = append(dst, byte(hi<<4|lo))
			body = body[j+6:]
			continue
		default:
			return dst[:start], false
		}
		body = body[j+2:]
	}
	return dst, true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
