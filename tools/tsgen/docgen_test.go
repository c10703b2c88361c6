package main

import (
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
)

// The list between the markers is replaced, the text around it kept; every served method is in it.
func TestDocMethodList(t *testing.T) {
	funcs, err := parseMethods("../../app")
	if err != nil {
		t.Fatal(err)
	}
	doc := "# before\n" + docBegin + "- stale: `Gone()`\n" + docEnd + "after\n"
	out, err := generateDoc([]byte(doc), funcs, bridge.Methods(), app.Streams())
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.HasPrefix(s, "# before\n"+docBegin+"- Containers: `AddMount(") || !strings.HasSuffix(s, docEnd+"after\n") || strings.Contains(s, "Gone") {
		t.Errorf("rewritten:\n%s", s)
	}
	for _, want := range []string{"`Stop(id string, timeoutSec int)`", "`Wait(id string) int`",
		"`SubscribeLogs(id string, q LogQuery) → name of \"logs\" events`", "`ExecStart(id string, req ExecRequest) → session id`"} {
		if !strings.Contains(s, want) {
			t.Errorf("the list lacks %s", want)
		}
	}
	for _, name := range bridge.MethodNames() {
		_, method, _ := strings.Cut(name, ".")
		if !strings.Contains(s, "`"+method+"(") {
			t.Errorf("%s is served but not listed", name)
		}
	}
	if _, err := generateDoc([]byte("# no markers\n"), funcs, bridge.Methods(), app.Streams()); err == nil || !strings.Contains(err.Error(), "no method list") {
		t.Errorf("a document without markers: %v", err)
	}
}
