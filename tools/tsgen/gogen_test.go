package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
)

// Each kind of method becomes its kind of client method: no result, a result, a stream of the
// kind's payload, a session.
func TestGoClientMethods(t *testing.T) {
	funcs, err := parseMethods("../../app")
	if err != nil {
		t.Fatal(err)
	}
	out, err := generateGo(funcs, bridge.Methods(), app.Streams(), app.EventPayloads())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"func (s Containers) Stop(ctx context.Context, id string, timeoutSec int) error {\n\treturn s.c.Call(ctx, \"Containers.Stop\", nil, id, timeoutSec)\n}",
		"func (s Containers) List(ctx context.Context, all bool) ([]app.Container, error) {",
		"func (s System) Version(ctx context.Context) (app.VersionInfo, error) {",
		"func (s Containers) SubscribeLogs(ctx context.Context, id string, q app.LogQuery) (*Stream[[]app.LogLine], error) {",
		"func (s Containers) SubscribeStats(ctx context.Context, id string) (*Stream[*app.Stats], error) {",
		"func (s System) SubscribeEvents(ctx context.Context) (*Stream[[]app.Event], error) {",
		"func (s Containers) ExecStart(ctx context.Context, id string, req app.ExecRequest) (*Session, error) {",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, name := range bridge.MethodNames() {
		service, method, _ := strings.Cut(name, ".")
		if !strings.Contains(string(out), "func (s "+service+") "+method+"(ctx context.Context") {
			t.Errorf("%s is served but has no client method", name)
		}
	}
}

// A stream table that does not match the services is refused, naming what is wrong.
func TestGoClientRefusesAWrongStreamTable(t *testing.T) {
	funcs, err := parseMethods("../../app")
	if err != nil {
		t.Fatal(err)
	}
	for streams, want := range map[*map[string]string]string{
		{"Containers.Gone": "logs"}:            "Containers.Gone, which the bridge does not serve",
		{"Containers.SubscribeLogs": "nolike"}: `event kind "nolike"`,
		{"Containers.Wait": "logs"}:            "Containers.Wait: app.Streams lists it, but it does not return a name",
	} {
		_, err := generateGo(funcs, bridge.Methods(), *streams, app.EventPayloads())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("streams %v: %v, want an error containing %q", *streams, err, want)
		}
	}
}

func TestGoType(t *testing.T) {
	imports := map[string]bool{}
	for _, c := range []struct {
		v    any
		want string
	}{
		{[]app.Container{}, "[]app.Container"},
		{map[string]*app.Stats{}, "map[string]*app.Stats"},
		{[2][]string{}, "[2][]string"},
		{(*app.Image)(nil), "*app.Image"},
	} {
		if got := goType(reflect.TypeOf(c.v), imports); got != c.want {
			t.Errorf("goType(%T) = %q, want %q", c.v, got, c.want)
		}
	}
	if !imports["github.com/skiff-containers/skiff/app"] || len(imports) != 1 {
		t.Errorf("imports %v", imports)
	}
}
