//go:build linux

package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// root is a directory that paths from the container are resolved in, never
// escaping it: symlinks and ".." resolve as if it were "/" (openat2
// RESOLVE_IN_ROOT).
type root struct {
	fd   int
	path string
}

func openRoot(dir string) (*root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening root %q: %w", dir, err)
	}
	return &root{fd: fd, path: dir}, nil
}

func (r *root) Close() error { return unix.Close(r.fd) }

// open opens p (a path inside the root) with flags.
func (r *root) open(p string, flags int) (int, error) {
	return r.openMode(p, flags, 0)
}

// openMode is open with the permissions for a file that O_CREAT creates.
func (r *root) openMode(p string, flags int, mode uint32) (int, error) {
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(r.fd, rel, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC),
			Mode:    uint64(mode),
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

// readFile reads a file inside the root, at most limit bytes.
func (r *root) readFile(p string, limit int64) ([]byte, error) {
	fd, err := r.open(p, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// writeFile replaces the contents of a file inside the root.
func (r *root) writeFile(p string, data []byte, mode os.FileMode) error {
	if err := r.mkdirAll(path.Dir(path.Clean("/"+p)), 0o755); err != nil {
		return err
	}
	fd, err := r.openMode(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW, uint32(mode.Perm()))
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), p)
	err = f.Chmod(mode.Perm()) // also when the file existed, and despite the umask
	if _, werr := f.Write(data); err == nil {
		err = werr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// stat returns the mode of p inside the root (following symlinks within it).
func (r *root) stat(p string) (os.FileMode, error) {
	fd, err := r.open(p, unix.O_PATH)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	mode := os.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFREG:
	default:
		mode |= os.ModeIrregular
	}
	return mode, nil
}

// mkdirAll creates directory p and its parents inside the root.
func (r *root) mkdirAll(p string, perm uint32) error {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	if m, err := r.stat(p); err == nil {
		if !m.IsDir() {
			return fmt.Errorf("creating directory %q: %w", p, unix.ENOTDIR)
		}
		return nil
	}
	if err := r.mkdirAll(path.Dir(p), perm); err != nil {
		return err
	}
	parent, err := r.open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	if err := unix.Mkdirat(parent, path.Base(p), perm); err != nil && err != unix.EEXIST {
		return fmt.Errorf("creating directory %q: %w", p, err)
	}
	return nil
}

// procPath is a /proc/self/fd path naming fd, for syscalls that take paths.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// lookPath finds the executable for argv0 the way execvp does, resolving
// inside the container with stat. It wraps agentproto's command sentinels.
func lookPath(argv0 string, env []string, stat func(string) (os.FileMode, error)) (string, error) {
	if argv0 == "" {
		return "", fmt.Errorf("empty command: %w", errCommandNotFound)
	}
	check := func(p string) error {
		m, err := stat(p)
		if err != nil {
			return errCommandNotFound
		}
		if m.IsDir() || m&0o111 == 0 {
			return errCommandNotExecutable
		}
		return nil
	}
	if strings.Contains(argv0, "/") {
		if err := check(argv0); err != nil {
			return "", fmt.Errorf("%q: %w", argv0, err)
		}
		return argv0, nil
	}
	pathEnv := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	found := errCommandNotFound
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, argv0)
		err := check(p)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, errCommandNotExecutable) {
			found = err
		}
	}
	return "", fmt.Errorf("%q not in PATH %s: %w", argv0, pathEnv, found)
}
