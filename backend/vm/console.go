package vm

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// ConsoleTail returns the last n non-empty lines of the console log at path
// (at most the last 64 KiB of it), for error messages.
func ConsoleTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if info, err := f.Stat(); err == nil && info.Size() > max {
		if _, err := f.Seek(info.Size()-max, io.SeekStart); err != nil {
			return ""
		}
	}
	data, _ := io.ReadAll(io.LimitReader(f, max))
	data = bytes.ReplaceAll(data, []byte("\r"), nil)
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// panicLine returns the console's last "Kernel panic" line without its
// timestamp, or "".
func panicLine(path string) string {
	tail := ConsoleTail(path, 400)
	i := strings.LastIndex(tail, "Kernel panic")
	if i < 0 {
		return ""
	}
	line := tail[i:]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	return strings.TrimSpace(line)
}
