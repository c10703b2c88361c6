//go:build linux

package agent

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"golang.org/x/sys/unix"
)

// mountFile binds the regular file m.File of share directory src alone at m.Target (a single-file
// bind mount), making Target an empty file when it is missing.
func (a *Agent) mountFile(src string, m *agentproto.MountSpec) error {
	if filepath.Base(m.File) != m.File || m.File == "." || m.File == ".." || m.Fill {
		return fmt.Errorf("mount: file %q of share %q: %w", m.File, m.Tag, errBadRequest)
	}
	dir, err := unix.Open(src, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("mount: share %q: %w", m.Tag, err)
	}
	defer unix.Close(dir)
	file, err := unix.Openat2(dir, m.File, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return fmt.Errorf("mount: file %q of share %q: %w", m.File, m.Tag, err)
	}
	defer unix.Close(file)
	var st unix.Stat_t
	if err := unix.Fstat(file, &st); err != nil {
		return fmt.Errorf("mount: file %q: %w", m.File, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("mount: %q of share %q is not a regular file: %w", m.File, m.Tag, errBadRequest)
	}
	mode, err := a.root.stat(m.Target)
	switch {
	case err == nil && mode.IsDir():
		return fmt.Errorf("mount: target %q is a directory in the container: a file can only be mounted on a file: %w", m.Target, errBadRequest)
	case err != nil && errors.Is(err, unix.ENOENT):
		if err := a.root.mkdirAll(filepath.Dir(filepath.Clean("/"+m.Target)), 0o755); err != nil {
			return fmt.Errorf("mount: target %q: %w", m.Target, err)
		}
		fd, err := a.root.openMode(m.Target, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return fmt.Errorf("mount: creating target %q: %w", m.Target, err)
		}
		unix.Close(fd)
	case err != nil:
		return fmt.Errorf("mount: target %q: %w", m.Target, err)
	}
	target, err := a.root.open(m.Target, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("mount: target %q: %w", m.Target, err)
	}
	defer unix.Close(target)
	tree, err := unix.OpenTree(file, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("mount: cloning %q of share %q: %w", m.File, m.Tag, err)
	}
	defer unix.Close(tree)
	if m.ReadOnly {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
			return fmt.Errorf("mount: making %q read-only: %w", m.File, err)
		}
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount: attaching %q at %q: %w", m.File, m.Target, err)
	}
	return nil
}
