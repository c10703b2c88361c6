package app

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/skiff-containers/skiff/internal/jsonstr"
)

// AppendLogLines appends ls as the JSON array encoding/json writes for it
// ([{"Time":"…","Stream":"…","Data":"…"},…]; <, > and & are not escaped), several times faster:
// logs are the one stream whose volume makes the encoding matter.
func AppendLogLines(b []byte, ls []LogLine) []byte {
	n := 2
	for _, l := range ls {
		n += len(l.Data) + len(l.Stream) + 80
	}
	b = slices.Grow(b, n+n/16) // a few escapes, a line's \n at least
	b = append(b, '[')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Time":"`...)
		b = l.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","Stream":`...)
		b = appendJSONString(b, l.Stream)
		b = append(b, `,"Data":`...)
		b = appendJSONString(b, l.Data)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendJSONString(b []byte, s string) []byte {
	if utf8.ValidString(s) {
		return jsonstr.Append(b, s)
	}
	enc, _ := json.Marshal(s) // invalid UTF-8 becomes U+FFFD, as encoding/json does everywhere
	return append(b, enc...)
}

// DecodeLogLines reads a JSON array of LogLine: fast for what AppendLogLines writes, through
// encoding/json for anything else.
func DecodeLogLines(b []byte) ([]LogLine, error) {
	if ls, ok := decodeLogLinesFast(b); ok {
		return ls, nil
	}
	var ls []LogLine
	err := json.Unmarshal(b, &ls)
	return ls, err
}

func decodeLogLinesFast(b []byte) ([]LogLine, bool) {
	b = bytes.TrimSpace(b)
	rest, ok := bytes.CutPrefix(b, []byte("["))
	if !ok {
		return nil, false
	}
	type span struct{ start, end int }
	var (
		ls       []LogLine
		data     []span // of each line's Data in slab
		slab     = make([]byte, 0, len(b))
		lastTime []byte
		t        time.Time
	)
	for len(rest) > 0 && rest[0] != ']' {
		if len(ls) > 0 {
			if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
				return nil, false
			}
		}
		if rest, ok = bytes.CutPrefix(rest, []byte(`{"Time":"`)); !ok {
			return nil, false
		}
		i := bytes.IndexByte(rest, '"')
		if i < 0 {
			return nil, false
		}
		if ts := rest[:i]; !bytes.Equal(ts, lastTime) {
			var err error
			if t, err = time.Parse(time.RFC3339Nano, string(ts)); err != nil {
				return nil, false
			}
			lastTime = ts
		}
		var l LogLine
		l.Time = t
		rest = rest[i:]
		switch {
		case bytes.HasPrefix(rest, []byte(`","Stream":"stdout","Data":"`)):
			l.Stream = "stdout"
		case bytes.HasPrefix(rest, []byte(`","Stream":"stderr","Data":"`)):
			l.Stream = "stderr"
		default:
			return nil, false
		}
		rest = rest[len(`","Stream":"stdout","Data":"`):]
		end := closingQuote(rest)
		if end < 0 {
			return nil, false
		}
		start := len(slab)
		if slab, ok = jsonstr.Unquote(slab, rest[:end]); !ok {
			return nil, false
		}
		if rest, ok = bytes.CutPrefix(rest[end+1:], []byte("}")); !ok {
			return nil, false
		}
		ls = append(ls, l)
		data = append(data, span{start, len(slab)})
	}
	if !bytes.Equal(rest, []byte("]")) {
		return nil, false
	}
	all := string(slab) // one string for the batch; each line's Data is a part of it
	for i := range ls {
		ls[i].Data = all[data[i].start:data[i].end]
	}
	if ls == nil {
		ls = []LogLine{}
	}
	return ls, true
}

// closingQuote returns the index of the quote ending the JSON string that s starts inside of.
func closingQuote(s []byte) int {
	for off := 0; ; {
		i := bytes.IndexByte(s[off:], '"')
		if i < 0 {
			return -1
		}
		i += off
		bs := 0
		for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return i
		}
		off = i + 1
	}
}
