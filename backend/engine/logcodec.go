package engine

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/skiff-containers/skiff/internal/jsonstr"
)

// The log's line format, written and read here by hand on the hot path (encoding/json for the
// rest): {"time":"…","stream":"stdout","log":"text\n"}, or "b64" instead of "log" for output that
// is not UTF-8, as Docker's json-file driver writes (apart from b64).

// lineEncoder turns one output stream into log lines: each complete line, or chunk of maxLineChunk
// bytes of a longer one, becomes an entry; an unfinished line waits for its end.
type lineEncoder struct {
	stream  string
	partial []byte // the unfinished line, shorter than maxLineChunk
	prefix  []byte // {"time":"…","stream":"…","log": of the current chunk
}

// encode appends to dst the entries that data completes, stamped t.
func (le *lineEncoder) encode(dst []byte, t time.Time, data []byte) []byte {
	le.prefix = append(le.prefix[:0], `{"time":"`...)
	le.prefix = t.UTC().AppendFormat(le.prefix, time.RFC3339Nano)
	le.prefix = append(le.prefix, `","stream":"`...)
	le.prefix = append(le.prefix, le.stream...)
	le.prefix = append(le.prefix, `","log":`...)
	for len(data) > 0 {
		seg := data
		i := bytes.IndexByte(data, '\n')
		if i >= 0 {
			seg, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		if len(le.partial) > 0 {
			le.partial = append(le.partial, seg...)
			seg = le.partial
		}
		for len(seg) >= maxLineChunk || (i >= 0 && len(seg) > 0) {
			k := min(len(seg), maxLineChunk)
			dst = le.appendLine(dst, t, seg[:k])
			seg = seg[k:]
		}
		le.partial = append(le.partial[:0], seg...) // may overlap: append copies forward
	}
	return dst
}

// flush appends the unfinished line, if any (the stream ended without a newline).
func (le *lineEncoder) flush(dst []byte, t time.Time) []byte {
	if len(le.partial) > 0 {
		dst = le.appendLine(dst, t, le.partial)
		le.partial = le.partial[:0]
	}
	return dst
}

func (le *lineEncoder) appendLine(dst []byte, t time.Time, line []byte) []byte {
	if !utf8.Valid(line) {
		buf := bytes.NewBuffer(dst)
		_ = encodeEntry(buf, LogEntry{Time: t, Stream: le.stream, Data: line})
		return buf.Bytes()
	}
	dst = append(dst, le.prefix...)
	dst = jsonstr.Append(dst, line)
	return append(dst, "}\n"...)
}

type logLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Log    string    `json:"log,omitempty"`
	B64    []byte    `json:"b64,omitempty"`
}

func encodeEntry(buf *bytes.Buffer, e LogEntry) error {
	if !utf8.Valid(e.Data) || (e.Stream != "stdout" && e.Stream != "stderr") {
		l := logLine{Time: e.Time, Stream: e.Stream, B64: e.Data}
		if utf8.Valid(e.Data) {
			l.Log, l.B64 = string(e.Data), nil
		}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		return enc.Encode(l) // adds the newline
	}
	// The common case, by hand: this is the hot path of log throughput.
	b := buf.AvailableBuffer()
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","stream":"`...)
	b = append(b, e.Stream...)
	b = append(b, `","log":`...)
	b = jsonstr.Append(b, e.Data)
	b = append(b, "}\n"...)
	buf.Write(b)
	return nil
}

func decodeEntry(b []byte) (LogEntry, error) {
	var d entryDecoder
	e, _, err := d.decode(nil, b)
	return e, err
}

// entryDecoder decodes log lines, remembering the last timestamp: the lines of one read of the
// workload's output share it, and parsing it is the dearest part of a line.
type entryDecoder struct {
	lastTime []byte
	t        time.Time
	head     []byte // the last fast-decoded line up to its text: {"time":"…","stream":"…","log":"
	headTime time.Time
	stream   string // of head
}

// decodeLines decodes complete lines (b ends with a newline); the entries' Data share one new
// buffer. Lines that do not decode are skipped.
func (d *entryDecoder) decodeLines(b []byte) []LogEntry {
	es := make([]LogEntry, 0, bytes.Count(b, []byte{'\n'}))
	slab := make([]byte, 0, len(b))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b[:i+1]
		b = b[i+1:]
		var e LogEntry
		var err error
		if e, slab, err = d.decode(slab, line); err == nil {
			es = append(es, e)
		}
	}
	return es
}

// decode decodes one line, appending its data to slab (e.Data is the part of slab appended).
func (d *entryDecoder) decode(slab, line []byte) (LogEntry, []byte, error) {
	if e, s, ok := d.decodeFast(slab, line); ok {
		return e, s, nil
	}
	var l logLine
	if err := json.Unmarshal(line, &l); err != nil {
		return LogEntry{}, slab, err
	}
	e := LogEntry{Time: l.Time, Stream: l.Stream, Data: l.B64}
	if l.B64 == nil {
		e.Data = []byte(l.Log)
	}
	return e, slab, nil
}

// decodeFast parses the lines encodeEntry writes by hand; anything else goes to encoding/json.
func (d *entryDecoder) decodeFast(slab, b []byte) (LogEntry, []byte, bool) {
	var e LogEntry
	var rest []byte
	if len(d.head) > 0 && bytes.HasPrefix(b, d.head) {
		// Same time and stream as the line before (the lines of one read share them).
		e.Time, e.Stream, rest = d.headTime, d.stream, b[len(d.head):]
	} else {
		var ok bool
		if rest, ok = bytes.CutPrefix(b, []byte(`{"time":"`)); !ok {
			return e, slab, false
		}
		i := bytes.IndexByte(rest, '"')
		if i < 0 {
			return e, slab, false
		}
		if ts := rest[:i]; bytes.Equal(ts, d.lastTime) {
			e.Time = d.t
		} else {
			t, err := time.Parse(time.RFC3339Nano, string(ts))
			if err != nil {
				return e, slab, false
			}
			e.Time, d.t, d.lastTime = t, t, append(d.lastTime[:0], ts...)
		}
		if rest, ok = bytes.CutPrefix(rest[i:], []byte(`","stream":"`)); !ok {
			return e, slab, false
		}
		switch {
		case bytes.HasPrefix(rest, []byte(`stdout","log":"`)):
			e.Stream = "stdout"
		case bytes.HasPrefix(rest, []byte(`stderr","log":"`)):
			e.Stream = "stderr"
		default:
			return e, slab, false
		}
		rest = rest[len(`stdout","log":"`):]
		d.head, d.headTime, d.stream = append(d.head[:0], b[:len(b)-len(rest)]...), e.Time, e.Stream
	}
	rest = bytes.TrimRight(rest, "\n")
	body, ok := bytes.CutSuffix(rest, []byte(`"}`))
	if !ok {
		return e, slab, false
	}
	start := len(slab)
	if slab, ok = jsonstr.Unquote(slab, body); !ok {
		return e, slab, false
	}
	e.Data = slab[start:len(slab):len(slab)]
	return e, slab, true
}
