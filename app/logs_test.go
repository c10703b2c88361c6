package app_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
)

// FuzzLogLinesJSON: AppendLogLines writes what encoding/json reads back as encoding/json's own
// encoding would be read, and DecodeLogLines reads both encodings as encoding/json does.
func FuzzLogLinesJSON(f *testing.F) {
	f.Add("plain\n", "stdout", int64(0))
	f.Add("quote \" back \\ ctl \x01\x1f tab\t<b>&amp;\r\n", "stderr", int64(123456789))
	f.Add("\xff\xfe invalid", "stdout", int64(-1))
	f.Add("ünïcødé ✓ \u2028", "other", int64(1))
	f.Fuzz(func(t *testing.T, data, stream string, ns int64) {
		at := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC).Add(time.Duration(ns))
		in := []app.LogLine{{Time: at, Stream: stream, Data: data}, {Time: at.In(time.FixedZone("x", 3600)), Stream: "stdout", Data: data + "\n"}}
		var want []app.LogLine
		std, _ := json.Marshal(in)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		fast := app.AppendLogLines(nil, in)
		if !json.Valid(fast) {
			t.Fatalf("invalid JSON %q", fast)
		}
		var got []app.LogLine
		if err := json.Unmarshal(fast, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("encoding/json reads %q as %+v (%v), want %+v", fast, got, err, want)
		}
		for _, enc := range [][]byte{fast, std} {
			got, err := app.DecodeLogLines(enc)
			if err != nil || len(got) != len(want) {
				t.Fatalf("DecodeLogLines(%q) = %+v, %v", enc, got, err)
			}
			for i := range got {
				if !got[i].Time.Equal(want[i].Time) || got[i].Stream != want[i].Stream || got[i].Data != want[i].Data {
					t.Fatalf("DecodeLogLines(%q)[%d] = %+v, want %+v", enc, i, got[i], want[i])
				}
			}
		}
	})
}

func TestDecodeLogLinesEmpty(t *testing.T) {
	for _, in := range []string{"[]", " [ ] ", "null"} {
		if ls, err := app.DecodeLogLines([]byte(in)); err != nil || len(ls) != 0 {
			t.Errorf("DecodeLogLines(%q) = %v, %v", in, ls, err)
		}
	}
	if _, err := app.DecodeLogLines([]byte(`[{"Time":"x"`)); err == nil {
		t.Error("truncated input decoded without an error")
	}
}
