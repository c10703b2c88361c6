package tarpath

import (
	"errors"
	"testing"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"a": "a", "./a/b/": "a/b", "a//b": "a/b", "a/../b": "b", "./": ".", ".": ".",
	} {
		if got, err := Clean(in); err != nil || got != want {
			t.Errorf("Clean(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/a", "..", "../a", "a/../../b", "./../a", "/"} {
		if _, err := Clean(bad); !errors.Is(err, ErrUnsafeEntry) {
			t.Errorf("Clean(%q): %v, want ErrUnsafeEntry", bad, err)
		}
	}
}

func TestSplitJoin(t *testing.T) {
	for _, rel := range []string{"a", "a/b", "a/b/c"} {
		if d, b := Split(rel); Join(d, b) != rel {
			t.Errorf("Join(Split(%q)) = %q", rel, Join(d, b))
		}
	}
	if d, b := Split("a"); d != "." || b != "a" {
		t.Errorf("Split(a) = %q, %q", d, b)
	}
}
