package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
)

type Base struct {
	ID      string
	Created time.Time
	Shadow  int // hidden by Outer.Shadow
}

type Meta struct {
	Labels map[string]string `json:"labels,omitempty"`
	Tie    int
}

type Other struct{ Tie int }

type Outer struct {
	Base
	*Meta
	Other
	Shadow string
	Name   string `json:"name"`
	Skip   string `json:"-"`
	//lint:ignore SA5008 the key "-" is what this field tests
	Dash    string           `json:"-,"`
	Count   int64            `json:"count,string"`
	Ptr     *Base            `json:"ptr,omitempty"`
	Items   []Base           `json:"items"`
	Fixed   [2]int           `json:"fixed"`
	Raw     []byte           `json:"raw"`
	ByID    map[int]*Base    `json:"byID"`
	Any     any              `json:"any"`
	Nested  struct{ A bool } `json:"nested"`
	Strings *[]string        `json:"strings"`
	Text    textish          `json:"text"`
	//lint:ignore U1000 unexported fields are never encoded: this one must not appear
	hidden string
	Dur    time.Duration     `json:"dur"`
	Opt    map[string][]bool `json:"opt,omitzero"`
	//lint:ignore SA5008 ",string" applies to scalars only: this one must stay an array
	Quoted []int    `json:"quoted,string"`
	PtrQ   *bool    `json:"ptrq,string"`
	Empty  struct{} `json:"empty"`
}

type textish struct{}

func (textish) MarshalText() ([]byte, error) { return []byte("x"), nil }

func TestStructsAsEncodingJSONEncodesThem(t *testing.T) {
	g := newGen()
	s, err := g.ts(reflect.TypeOf(Outer{}), true)
	if err != nil || s != "Outer" {
		t.Fatalf("ts(Outer) = %q, %v", s, err)
	}
	want := `export interface Base {
  ID: string;
  Created: string;
  Shadow: number;
}

export interface Outer {
  ID: string;
  Created: string;
  labels?: Record<string, string> | null;
  Shadow: string;
  name: string;
  "-": string;
  count: string;
  ptr?: Base | null;
  items: Base[] | null;
  fixed: number[];
  raw: string | null;
  byID: Record<string, Base | null> | null;
  any: unknown;
  nested: { A: boolean; };
  strings: string[] | null;
  text: string;
  dur: number;
  opt?: Record<string, boolean[] | null> | null;
  quoted: number[] | null;
  ptrq: string | null;
  empty: {};
}

`
	if got := g.declarations(); got != want {
		t.Errorf("declarations:\n%s\nwant:\n%s", got, want)
	}

	// The keys are those encoding/json writes, in its order, and each value has the declared type:
	// once with nil slices, maps and pointers, once with values (omitempty ones set so that they appear).
	tsTypes := map[string]string{}
	var tsKeys []string
	body := want[strings.Index(want, "export interface Outer {\n")+len("export interface Outer {\n"):]
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		k, typ, _ := strings.Cut(strings.TrimSpace(line), ": ")
		if k = strings.TrimSuffix(k, "?"); !strings.HasPrefix(k, `"`) {
			k = strconv.Quote(k)
		}
		tsKeys = append(tsKeys, k)
		tsTypes[k] = strings.TrimSuffix(typ, ";")
	}
	yes := true
	for _, v := range []Outer{
		{Meta: &Meta{Labels: map[string]string{"a": "b"}}, Ptr: &Base{}, Opt: map[string][]bool{}},
		{Meta: &Meta{Labels: map[string]string{"x": "y"}}, Ptr: &Base{}, Items: []Base{{}}, Raw: []byte("x"),
			ByID: map[int]*Base{1: nil}, Any: 1, Strings: &[]string{"a"}, Opt: map[string][]bool{"a": {true}},
			Quoted: []int{1}, PtrQ: &yes},
	} {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var jsonKeys []string
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			key := strconv.Quote(k.(string))
			jsonKeys = append(jsonKeys, key)
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				t.Fatal(err)
			}
			if !admits(tsTypes[key], val) {
				t.Errorf("key %s: encoding/json writes %s, TS type %q", key, val, tsTypes[key])
			}
		}
		if len(jsonKeys) < 15 || strings.Join(tsKeys, " ") != strings.Join(jsonKeys, " ") {
			t.Errorf("TS keys %v, encoding/json writes %v", tsKeys, jsonKeys)
		}
	}
}

// admits says whether JSON value v has TS type ts (as tsgen writes types).
func admits(ts string, v json.RawMessage) bool {
	base, nullable := strings.CutSuffix(ts, " | null")
	switch c := v[0]; {
	case ts == "unknown":
		return true
	case c == 'n':
		return nullable
	case c == '"':
		return base == "string"
	case c == 't' || c == 'f':
		return base == "boolean"
	case c == '[':
		return strings.HasSuffix(base, "[]")
	case c == '{':
		return strings.HasPrefix(base, "Record<") || strings.HasPrefix(base, "{") || base[0] >= 'A' && base[0] <= 'Z'
	}
	return base == "number"
}

func TestTopLevelTypes(t *testing.T) {
	for _, c := range []struct {
		v        any
		null     bool
		want     string
		wantFail bool
	}{
		{v: []*Base{}, null: false, want: "(Base | null)[]"},
		{v: []string{}, null: true, want: "string[] | null"},
		{v: (*int)(nil), null: true, want: "number | null"},
		{v: time.Time{}, want: "string"},
		{v: map[bool]int{}, wantFail: true},
		{v: make(chan int), wantFail: true},
		{v: struct{ F func() }{}, wantFail: true},
	} {
		got, err := newGen().ts(reflect.TypeOf(c.v), c.null)
		if c.wantFail {
			if !errors.Is(err, errUnsupported) {
				t.Errorf("%T: %q, %v; want errUnsupported", c.v, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%T: %q, %v; want %q", c.v, got, err, c.want)
		}
	}
}

// Two Go types of one name would give one TS interface for both.
func TestNameCollision(t *testing.T) {
	type Base struct{ Other string }
	g := newGen()
	if _, err := g.ts(reflect.TypeOf(Outer{}), true); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ts(reflect.TypeOf(Base{}), true); !errors.Is(err, errNameCollision) {
		t.Errorf("got %v, want errNameCollision", err)
	}
}

type Svc struct{}

func (*Svc) Do(id string, n int, refs []string) (*Base, error) { return nil, nil }
func (*Svc) Ping()                                             {}

func TestGenerateNamesParametersFromTheSource(t *testing.T) {
	dir := t.TempDir()
	src := "package x\n\n// Do does it.\nfunc (s *Svc) Do(id string, timeoutSec int, _ []string) (*Base, error) { return nil, nil }\n" +
		"func (Svc) Ping() {}\n"
	if err := os.WriteFile(filepath.Join(dir, "svc.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var methods []bridge.Method
	st := reflect.TypeOf(&Svc{})
	for _, name := range []string{"Do", "Ping"} {
		methods = append(methods, bridge.Method{Name: "Svc." + name, Receiver: st, Method: name,
			Func: reflect.ValueOf(&Svc{}).MethodByName(name).Type()})
	}
	out, err := generate(dir, methods, map[string]any{"end": app.StreamEnd{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  /** Do does it. */\n  \"Svc.Do\": (id: string, timeoutSec: number, arg2: string[] | null) => Promise<Base>;\n",
		"  \"Svc.Ping\": () => Promise<void>;\n",
		"export interface EventPayloads {\n  end: StreamEnd;\n}\n",
		"export interface StreamEnd {\n  error?: string;\n}\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := os.Remove(filepath.Join(dir, "svc.go")); err != nil {
		t.Fatal(err)
	}
	if _, err := generate(dir, methods, nil); err == nil || !strings.Contains(err.Error(), "Svc.Do: no declaration") {
		t.Errorf("without the source: %v, want an error naming the method", err)
	}
}

// Every method the bridge serves is in the generated table, and nothing else.
func TestTableIsTheBridgeListing(t *testing.T) {
	out, err := generate("../../app", bridge.Methods(), app.EventPayloads())
	if err != nil {
		t.Fatal(err)
	}
	table := string(out)[strings.Index(string(out), "export interface Methods {"):]
	table = table[:strings.Index(table, "\n}\n")]
	n := 0
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, `  "`) {
			n++
		}
	}
	names := bridge.MethodNames()
	for _, name := range names {
		if !strings.Contains(table, "\n  \""+name+"\": (") {
			t.Errorf("%s is served but not in the table", name)
		}
	}
	if n != len(names) {
		t.Errorf("the table has %d methods, the bridge serves %d", n, len(names))
	}
}
