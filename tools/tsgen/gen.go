package main

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// gen maps Go types to TypeScript as encoding/json encodes them, collecting a TS interface for every
// named struct it meets.
type gen struct {
	decls map[string]string       // TS interface name → its declaration
	seen  map[string]reflect.Type // TS interface name → the Go type it came from
}

func newGen() *gen { return &gen{decls: map[string]string{}, seen: map[string]reflect.Type{}} }

var (
	timeType      = reflect.TypeOf(time.Time{})
	jsonMarshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshaler = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()

	errUnsupported   = errors.New("no JSON encoding")
	errNameCollision = errors.New("two Go types with one name")
)

// implements says whether t or *t implements i.
func implements(t, i reflect.Type) bool { return t.Implements(i) || reflect.PointerTo(t).Implements(i) }

// ts returns the TypeScript type of t's JSON encoding. Pointers, slices and maps may encode as
// null, so they get "| null" when null is true (false for a method's result pointer).
func (g *gen) ts(t reflect.Type, null bool) (string, error) {
	orNull := func(s string) string {
		if null {
			return s + " | null"
		}
		return s
	}
	switch {
	case t == timeType:
		return "string", nil
	case t.Kind() != reflect.Pointer && implements(t, jsonMarshaler):
		return "unknown", nil
	case t.Kind() != reflect.Pointer && implements(t, textMarshaler):
		return "string", nil
	}
	switch k := t.Kind(); {
	case k >= reflect.Int && k <= reflect.Float64: // the integer and float kinds
		return "number", nil
	case k == reflect.Bool:
		return "boolean", nil
	}
	switch t.Kind() {
	case reflect.String:
		return "string", nil
	case reflect.Interface:
		return "unknown", nil
	case reflect.Pointer:
		s, err := g.ts(t.Elem(), true)
		if strings.HasSuffix(s, " | null") {
			return s, err
		}
		return orNull(s), err
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return orNull("string"), nil // base64
		}
		s, err := g.ts(t.Elem(), true)
		if strings.Contains(s, " ") {
			s = "(" + s + ")"
		}
		if t.Kind() == reflect.Array {
			return s + "[]", err
		}
		return orNull(s + "[]"), err
	case reflect.Map:
		// encoding/json writes string, integer and TextMarshaler keys as strings.
		if k := t.Key().Kind(); k != reflect.String && (k < reflect.Int || k > reflect.Uintptr) && !implements(t.Key(), textMarshaler) {
			return "", fmt.Errorf("map key %s: %w", t.Key(), errUnsupported)
		}
		s, err := g.ts(t.Elem(), true)
		return orNull("Record<string, " + s + ">"), err
	case reflect.Struct:
		if t.Name() == "" {
			return g.fields(t, true)
		}
		return t.Name(), g.declare(t)
	}
	return "", fmt.Errorf("type %s: %w", t, errUnsupported)
}

// declare adds the interface of the named struct t (once).
func (g *gen) declare(t reflect.Type) error {
	if prev, ok := g.seen[t.Name()]; ok {
		if prev != t {
			return fmt.Errorf("%s and %s: %w", prev, t, errNameCollision)
		}
		return nil
	}
	g.seen[t.Name()] = t
	body, err := g.fields(t, false)
	if err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	g.decls[t.Name()] = "export interface " + t.Name() + " " + body
	return nil
}

// field is one JSON key of a struct.
type field struct {
	name, ts string
	optional bool
	depth    int
	tagged   bool
	seq      int // place in the depth-first walk, which is encoding/json's key order
}

// fields returns the TS object type of struct t, one key a line or all on one line (inline): its
// JSON keys in field order, embedded structs flattened by encoding/json's rule (the shallowest
// field wins; at one depth a tagged one; a tie drops the key).
func (g *gen) fields(t reflect.Type, inline bool) (string, error) {
	var all []field
	if err := g.collect(t, 0, map[reflect.Type]bool{}, &all); err != nil {
		return "", err
	}
	byName := map[string][]field{}
	for i, f := range all {
		f.seq = i
		byName[f.name] = append(byName[f.name], f)
	}
	var chosen []field
	for _, fs := range byName {
		if f, ok := dominant(fs); ok {
			chosen = append(chosen, f)
		}
	}
	sort.Slice(chosen, func(i, j int) bool { return chosen[i].seq < chosen[j].seq })
	var keys []string
	for _, f := range chosen {
		opt := ""
		if f.optional {
			opt = "?"
		}
		keys = append(keys, fmt.Sprintf("%s%s: %s;", tsKey(f.name), opt, f.ts))
	}
	if len(keys) == 0 {
		return "{}", nil
	}
	if inline {
		return "{ " + strings.Join(keys, " ") + " }", nil
	}
	return "{\n  " + strings.Join(keys, "\n  ") + "\n}", nil
}

func (g *gen) collect(t reflect.Type, depth int, visiting map[reflect.Type]bool, out *[]field) error {
	if visiting[t] {
		return nil
	}
	visiting[t] = true
	defer delete(visiting, t)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if name == "" && et.Kind() == reflect.Struct {
				if err := g.collect(et, depth+1, visiting, out); err != nil {
					return err
				}
				continue
			}
			if !sf.IsExported() && et.Kind() != reflect.Struct {
				continue
			}
		} else if !sf.IsExported() {
			continue
		}
		s, err := g.ts(ft, true)
		if err != nil {
			return fmt.Errorf("field %s: %w", sf.Name, err)
		}
		has := func(opt string) bool { return strings.Contains(","+opts+",", ","+opt+",") }
		if v := strings.TrimSuffix(s, " | null"); has("string") && (v == "number" || v == "boolean") {
			s = "string" + s[len(v):] // the value quoted
		}
		f := field{name: name, ts: s, depth: depth, tagged: name != "", optional: has("omitempty") || has("omitzero")}
		if name == "" {
			f.name = sf.Name
		}
		*out = append(*out, f)
	}
	return nil
}

// dominant picks the field encoding/json encodes among those with one name.
func dominant(fs []field) (field, bool) {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].depth < fs[j].depth })
	top := fs[:1]
	for _, f := range fs[1:] {
		if f.depth == fs[0].depth {
			top = append(top, f)
		}
	}
	if len(top) == 1 {
		return top[0], true
	}
	var tagged []field
	for _, f := range top {
		if f.tagged {
			tagged = append(tagged, f)
		}
	}
	if len(tagged) == 1 {
		return tagged[0], true
	}
	return field{}, false
}

// tsKey quotes a key that is not a plain identifier.
func tsKey(k string) string {
	for i, r := range k {
		if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Sprintf("%q", k)
		}
	}
	return k
}

// declarations returns the collected interfaces sorted by name.
func (g *gen) declarations() string {
	names := make([]string, 0, len(g.decls))
	for n := range g.decls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(g.decls[n] + "\n\n")
	}
	return b.String()
}
