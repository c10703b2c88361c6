package autostart

import (
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestEnableDisable(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "cfg"))
	const label = "dev.skiff.test"
	if Enabled(label) {
		t.Fatal("enabled before Enable")
	}
	p, err := Enable(label, "Skiff", []string{"/opt/Skiff App/skiff", "daemon"})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(home, "cfg", "autostart", label+".desktop")
	if runtime.GOOS == "darwin" {
		want = filepath.Join(home, "Library", "LaunchAgents", label+".plist")
	}
	if p != want || !Enabled(label) {
		t.Errorf("Enable wrote %s (enabled %v), want %s", p, Enabled(label), want)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "darwin" && !strings.Contains(string(b), "\nExec=\"/opt/Skiff App/skiff\" daemon\n") {
		t.Errorf("entry:\n%s", b)
	}
	if err := Disable(label); err != nil || Enabled(label) {
		t.Errorf("Disable: %v, enabled %v", err, Enabled(label))
	}
	if err := Disable(label); err != nil {
		t.Errorf("Disable of nothing: %v", err)
	}
	for _, bad := range [][]string{nil, {"relative/skiff"}, {"/x", "a\nb"}} {
		if _, err := Enable(label, "Skiff", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Enable(%q): %v", bad, err)
		}
	}
	if _, err := Enable("a/b", "Skiff", []string{"/x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Enable with a label holding a slash: %v", err)
	}
}

// The LaunchAgent is a well-formed property list with the program and its arguments in order,
// escaped (written on a Mac; its text is checked everywhere).
func TestLaunchAgent(t *testing.T) {
	s := launchAgent("dev.skiff.app", []string{"/Applications/Skiff.app/Contents/MacOS/Skiff", "a&b<c>"})
	var doc struct {
		Dict struct {
			Keys    []string `xml:"key"`
			Strings []string `xml:"string"`
			Array   struct {
				Strings []string `xml:"string"`
			} `xml:"array"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	if got := doc.Dict.Array.Strings; len(got) != 2 || got[0] != "/Applications/Skiff.app/Contents/MacOS/Skiff" || got[1] != "a&b<c>" {
		t.Errorf("ProgramArguments %q", got)
	}
	if strings.Join(doc.Dict.Keys, ",") != "Label,ProgramArguments,RunAtLoad,ProcessType" || doc.Dict.Strings[0] != "dev.skiff.app" {
		t.Errorf("keys %q strings %q", doc.Dict.Keys, doc.Dict.Strings)
	}
}

func TestDesktopQuote(t *testing.T) {
	for in, want := range map[string]string{"/usr/bin/skiff": "/usr/bin/skiff", "/a b": `"/a b"`, `/x"$y`: `"/x\\"\\$y"`, "100%": `"100%%"`} {
		if got := desktopQuote(in); got != want {
			t.Errorf("desktopQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
