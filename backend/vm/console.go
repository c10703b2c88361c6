package vm

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// ConsoleTail returns the last n non-empty lines of the console log at path
// (at most its last 64 KiB, taken from path+".1" too when path was rotated a
// moment ago and holds less), for error messages.
func ConsoleTail(path string, n int) string {
	const max = 64 << 10
	data := readTail(path, max)
	if len(data) < max {
		data = append(readTail(path+".1", max-len(data)), data...)
	}
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

// readTail returns the last max bytes of the file at path (nil when there is none).
func readTail(path string, max int) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > int64(max) {
		if _, err := f.Seek(info.Size()-int64(max), io.SeekStart); err != nil {
			return nil
		}
	}
	data, _ := io.ReadAll(io.LimitReader(f, int64(max)))
	return data
}

// PanicLine returns the console's last "Kernel panic" line without its
// timestamp, or "".
func PanicLine(path string) string {
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
