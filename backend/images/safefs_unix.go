//go:build linux || darwin

package images

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// errEscape is returned by the resolvers when a path would leave the root: a ".." above it, an absolute
// symlink, or a relative symlink that climbs out. Callers wrap it with the entry name (ErrUnsafeEntry).
var errEscape = errors.New("path leaves the image root")

// maxSymlinkHops bounds symlink resolution, as the kernel's MAXSYMLINKS does.
const maxSymlinkHops = 40

// fsRoot is an open directory beneath which every unpack operation stays. Directories are opened
// component by component relative to it (openat2 RESOLVE_BENEATH on Linux, an O_NOFOLLOW walk
// elsewhere), so no symlink in the tree can redirect a write to the host.
type fsRoot struct {
	fd   int
	path string
	// dirs caches open directory fds by cleaned relative path; invalidated whenever a directory is
	// removed or replaced, so a cached fd never names a directory the tree no longer has there.
	dirs map[string]int
	// portable forces the O_NOFOLLOW component walk (the darwin resolver) on Linux too: tests.
	portable bool
}

func openFSRoot(dir string, portable bool) (*fsRoot, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &fsRoot{fd: fd, path: dir, dirs: map[string]int{}, portable: portable}, nil
}

func (r *fsRoot) Close() error {
	r.dropCache()
	return unix.Close(r.fd)
}

func (r *fsRoot) dropCache() {
	for k, fd := range r.dirs {
		unix.Close(fd)
		delete(r.dirs, k)
	}
}

// dir returns an fd for the directory rel (cleaned, relative; "." is the root), creating missing
// directories (0755) when create is set. The fd belongs to the cache: callers must not close it.
func (r *fsRoot) dir(rel string, create bool) (int, error) {
	if rel == "." || rel == "" {
		return r.fd, nil
	}
	if fd, ok := r.dirs[rel]; ok {
		return fd, nil
	}
	var fd int
	var err error
	if r.portable {
		fd, err = walkBeneath(r.fd, rel, false)
	} else {
		fd, err = openBeneath(r.fd, rel)
	}
	if errors.Is(err, unix.ENOENT) && create {
		fd, err = walkBeneath(r.fd, rel, true)
	}
	if err != nil {
		return -1, err
	}
	r.dirs[rel] = fd
	return fd, nil
}

// walkBeneath opens directory rel beneath rootfd one component at a time with O_NOFOLLOW. A symlink
// component is read and expanded in place; absolute targets and ".." above the root fail with
// errEscape. With create, missing components are made (0755).
func walkBeneath(rootfd int, rel string, create bool) (int, error) {
	stack := []int{} // fds of the directories below the root on the current path
	cur := func() int {
		if len(stack) == 0 {
			return rootfd
		}
		return stack[len(stack)-1]
	}
	closeAll := func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
	}
	todo := strings.Split(rel, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				closeAll()
				return -1, errEscape
			}
			unix.Close(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			continue
		}
		fd, err := unix.Openat(cur(), c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			stack = append(stack, fd)
			continue
		}
		var st unix.Stat_t
		if serr := unix.Fstatat(cur(), c, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
			if errors.Is(serr, unix.ENOENT) && create {
				if merr := unix.Mkdirat(cur(), c, 0o755); merr != nil && !errors.Is(merr, unix.EEXIST) {
					closeAll()
					return -1, merr
				}
				todo = append([]string{c}, todo...)
				continue
			}
			closeAll()
			return -1, serr
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			closeAll()
			return -1, err
		}
		if hops++; hops > maxSymlinkHops {
			closeAll()
			return -1, unix.ELOOP
		}
		target, rerr := readlinkAt(cur(), c)
		if rerr != nil {
			closeAll()
			return -1, rerr
		}
		if path.IsAbs(target) {
			closeAll()
			return -1, errEscape
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(stack) == 0 {
		return unix.Dup(rootfd)
	}
	for _, fd := range stack[:len(stack)-1] {
		unix.Close(fd)
	}
	return stack[len(stack)-1], nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// lstatAt stats name in dirfd without following a final symlink; ok is false when it does not exist.
func lstatAt(dirfd int, name string) (st unix.Stat_t, ok bool, err error) {
	err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	return st, err == nil, err
}

// removeAllAt removes name in dirfd and, for a directory, everything below it, never following a
// symlink. A missing name is not an error.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	st, ok, serr := lstatAt(dirfd, name)
	if serr != nil || !ok || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	if err := emptyDirAt(dirfd, name, nil); err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

// emptyDirAt removes every entry of directory name in dirfd except those keep reports true for.
func emptyDirAt(dirfd int, name string, keep func(child string) bool) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	for _, n := range names {
		if keep != nil && keep(n) {
			continue
		}
		if err := removeAllAt(fd, n); err != nil {
			return err
		}
	}
	return nil
}
