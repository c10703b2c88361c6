// Package autostart starts a program when the user logs in: on macOS a LaunchAgent property list in
// ~/Library/LaunchAgents, elsewhere an XDG autostart entry ($XDG_CONFIG_HOME/autostart/NAME.desktop).
//
//	path, err := autostart.Enable("dev.skiff.app", "Skiff", []string{"/Applications/Skiff.app/Contents/MacOS/Skiff"})
//	on := autostart.Enabled("dev.skiff.app")
//	err = autostart.Disable("dev.skiff.app")
//
// The entry is a file of the user's own: writing it needs no privilege, and removing it undoes it.
package autostart

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrInvalid is a label or command that cannot make an entry.
var ErrInvalid = errors.New("invalid autostart entry")

// Enable writes the entry that runs args (args[0] absolute) at login under label (a reverse-DNS
// name such as "dev.skiff.app"), replacing one there; name is what the desktop shows. It returns
// the file written.
func Enable(label, name string, args []string) (string, error) {
	if err := check(label, args); err != nil {
		return "", err
	}
	p, err := Path(label)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(entry(label, name, args)), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return p, nil
}

// Disable removes the entry of label; none there is not an error.
func Disable(label string) error {
	p, err := Path(label)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}

// Enabled says whether the entry of label is there.
func Enabled(label string) bool {
	p, err := Path(label)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

func check(label string, args []string) error {
	if label == "" || strings.ContainsAny(label, "/\\ \n") {
		return fmt.Errorf("%w: label %q", ErrInvalid, label)
	}
	if len(args) == 0 || !filepath.IsAbs(args[0]) {
		return fmt.Errorf("%w: the program must be an absolute path: %q", ErrInvalid, args)
	}
	for _, a := range args {
		if strings.ContainsAny(a, "\n\r\x00") {
			return fmt.Errorf("%w: argument %q", ErrInvalid, a)
		}
	}
	return nil
}

// launchAgent is the property list of a LaunchAgent that runs args once at login.
func launchAgent(label string, args []string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + xmlEscape(label) + `</string>
	<key>ProgramArguments</key>
	<array>
`)
	for _, a := range args {
		b.WriteString("\t\t<string>" + xmlEscape(a) + "</string>\n")
	}
	b.WriteString(`	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>ProcessType</key>
	<string>Interactive</string>
</dict>
</plist>
`)
	return b.String()
}

// desktopEntry is the XDG autostart entry that runs args at login.
func desktopEntry(name string, args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = desktopQuote(a)
	}
	return "[Desktop Entry]\nType=Application\nName=" + name + "\nExec=" + strings.Join(q, " ") +
		"\nX-GNOME-Autostart-enabled=true\nTerminal=false\n"
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

// desktopQuote quotes an Exec argument as the Desktop Entry Specification says: in double quotes,
// with ", `, $ and \ escaped by a backslash (and the backslash itself doubled once more, as the
// value is a string too); % doubled.
func desktopQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\"'\\`$<>~|&;*?#()%") {
		return a
	}
	r := strings.NewReplacer(`\`, `\\\\`, `"`, `\\"`, "`", "\\\\`", "$", `\\$`, "%", "%%")
	return `"` + r.Replace(a) + `"`
}
