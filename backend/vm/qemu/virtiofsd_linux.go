package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
)

// DefaultVirtiofsd is QEMU's bundled virtiofsd on Debian.
const DefaultVirtiofsd = "/usr/lib/qemu/virtiofsd"

// startVirtiofsd starts one daemon serving sh and returns the process and
// the client end of its vhost-user socket (for QEMU's chardev).
//
// The daemon runs as the engine's user. Debian 12's C virtiofsd wants to
// be root (it chroots, drops capabilities and changes its fsuid per
// request), so under an ordinary user it runs in a user namespace of its
// own where that user (uid and gid) is root and no other id exists: root
// there, over the user's own files only. A guest root is then the engine's
// user in the share: what it creates is the user's, the user's files show
// as root's in the guest and anyone else's as 65534 (nobody), and a guest
// user other than root cannot create anything (the daemon cannot take an
// id the namespace lacks: EINVAL). The kernel refuses chown to an id the
// namespace lacks, and device nodes to any namespace but the first. The
// daemon's setgroups(0) at start, which the kernel refuses in a namespace
// whose gid map an unprivileged process wrote, is a no-op success under
// proc.NewUserNSSpawner's filter (the daemon keeps the user's groups).
// An engine run as root starts the daemon with no user namespace, as
// before: every owner shows as on the host.
//
// Debian 12's C virtiofsd has no read-only option, so a read-only share runs
// the daemon in its own mount namespace (owned by its user namespace) where
// the source is bind-mounted read-only on <stateDir>/src-<tag> before exec;
// with sandbox=chroot the daemon can only see that mount, so every write
// from the guest fails with EROFS. The namespaces (and the mount) vanish
// with the process.
//
// Every share but the rootfs is a host folder, whose path must hold no
// symbolic link (the engine passes the path it pinned at create). It is
// opened with no link followed, bind-mounted (read-only or not) the same
// way, and the daemon starts only if the mount is that same directory: a
// link planted in its path, even while the daemon starts, leads nowhere.
//
// A host folder's daemon also runs under proc.NewNoSetidSpawner's seccomp
// filter: no setuid or setgid bit by chmod or create (the user's files are
// the namespace root's own, so nothing else stops a guest root from making
// one of them setuid), and no device node at all, not even the 0:0
// "whiteout" one the kernel lets anyone make. Only under a root engine
// does the daemon also drop CAP_CHOWN, CAP_FSETID, CAP_MKNOD and
// CAP_SETFCAP (bindModcaps; what a guest root creates is root's there):
// in the user namespace those reach no file the kernel lets them change.
// The rootfs keeps them all: an image holds setuid files.
func (h *qemuHypervisor) startVirtiofsd(sh vm.Share, stateDir string) (*exec.Cmd, *os.File, error) {
	src, err := shareSource(sh)
	if err != nil {
		return nil, nil, err
	}
	lis, cli, err := listenerPair("vfs-" + sh.Tag)
	if err != nil {
		return nil, nil, err
	}
	defer lis.Close()
	// The rootfs is the guest's own: cache=auto (metadata cached for 1 s). A
	// bind share is edited from both sides while the container runs, and a
	// cached size would make the guest read a grown file short: cache=none.
	cache := "none"
	if sh.Tag == vm.RootShareTag {
		cache = "auto"
	}
	files := []*os.File{lis} // fd 3
	spawn, dir := h.spawn, src
	var extra []string
	bind := sh.Tag != vm.RootShareTag
	userNS := os.Geteuid() != 0
	if userNS {
		if spawn = h.spawnFS; spawn == nil {
			cli.Close()
			return nil, nil, fmt.Errorf("share %q: %w", sh.Tag, h.spawnFSErr)
		}
	}
	if bind {
		if spawn = h.spawnBind; spawn == nil {
			cli.Close()
			return nil, nil, fmt.Errorf("share %q: %w", sh.Tag, h.spawnBindErr)
		}
		// The directory itself, reached with no symbolic link followed, is what the
		// daemon serves: a link planted in the path later leads nowhere.
		d, err := openDirNoFollow(src)
		if err != nil {
			cli.Close()
			return nil, nil, fmt.Errorf("share %q: %w", sh.Tag, err)
		}
		defer d.Close()
		files = append(files, d) // fd 4
		if !userNS {
			extra = []string{"-o", bindModcaps}
		}
	}
	source := dir
	if bind || sh.ReadOnly { // dir bind-mounted on a directory of our own, in the daemon's mount namespace
		source = filepath.Join(stateDir, "src-"+sh.Tag)
		if err := os.Mkdir(source, 0o700); err != nil && !os.IsExist(err) {
			cli.Close()
			return nil, nil, fmt.Errorf("share %q: %w", sh.Tag, err)
		}
	}
	args := append([]string{"--fd=3", "-o", "source=" + source, "-o", "cache=" + cache, "-o", "sandbox=chroot",
		"-o", "log_level=warn", "--rlimit-nofile=" + strconv.FormatUint(nofileLimit(), 10)}, extra...)
	cmd := exec.Command(h.virtiofsd, args...)
	if source != dir {
		cmd = exec.Command("/bin/sh", append([]string{"-c", mountScript(sh.ReadOnly), dir, source, h.virtiofsd}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if userNS {
		cmd.SysProcAttr = userNSAttr()
	}
	if source != dir {
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS // Go makes / private first
	}
	cmd.ExtraFiles = files
	logf, err := os.OpenFile(filepath.Join(stateDir, "virtiofsd-"+sh.Tag+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("share %q: %w", sh.Tag, err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := spawn.Start(cmd); err != nil {
		cli.Close()
		if userNS && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOSPC)) {
			return nil, nil, fmt.Errorf("share %q: starting %s in a user namespace (which this system refuses "+
				"an ordinary user: see sysctls kernel.unprivileged_userns_clone, user.max_user_namespaces and "+
				"kernel.apparmor_restrict_unprivileged_userns): %w", sh.Tag, h.virtiofsd, err)
		}
		return nil, nil, fmt.Errorf("share %q: starting %s: %w", sh.Tag, h.virtiofsd, err)
	}
	if err := proc.WritePidFile(stateDir, "virtiofsd-"+sh.Tag, cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		cli.Close()
		return nil, nil, fmt.Errorf("share %q: virtiofsd exited at once: %s", sh.Tag, readSmall(logf.Name()))
	}
	return cmd, cli, nil
}

// mountScript is the sh script that, in the daemon's own mount namespace,
// bind-mounts $0 on $1 (read-only if ro) and execs the rest of its
// arguments. A bind source must be in the mounting namespace, which an fd
// opened outside it is not, so the path is mounted; when fd 4 holds the
// directory opened with no link followed, the mount must be that directory.
func mountScript(ro bool) string {
	mount := "mount --bind"
	if ro {
		mount += " -o ro"
	}
	return mount + ` "$0" "$1" || exit 1
if [ -e /proc/self/fd/4 ] && [ "$(stat -L -c %d:%i /proc/self/fd/4)" != "$(stat -c %d:%i "$1")" ]; then
	echo "share source $0 was replaced while the daemon started" >&2; exit 1
fi
shift; exec "$@" 4>&-`
}

// openDirNoFollow opens the directory at the absolute path p, following no
// symbolic link in any of its components.
func openDirNoFollow(p string) (*os.File, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open("/", flags, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /: %w", err)
	}
	for _, name := range strings.Split(strings.Trim(filepath.Clean(p), "/"), "/") {
		if name == "" {
			continue
		}
		next, err := unix.Openat(fd, name, flags, 0)
		unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("%s: %q is a symbolic link or not a directory (a share's path must have no link): %w", p, name, vm.ErrInvalidSpec)
		}
		if err != nil {
			return nil, fmt.Errorf("opening %s at %q: %w", p, name, err)
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), p), nil
}

// userNSAttr puts a child in a new user namespace where the engine's
// user and group are root and no other id is mapped.
func userNSAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		// "deny" in /proc/<pid>/setgroups: what an unprivileged writer of a gid map must do.
		GidMappingsEnableSetgroups: false,
	}
}

// nofileLimit is the open-files limit virtiofsd asks for: its default
// raises the hard limit, which only the initial namespace's root may do
// (and fails quietly otherwise), so it asks for the hard limit it has.
func nofileLimit() uint64 {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Max > 1_000_000 {
		return 1_000_000
	}
	return r.Max
}

// bindModcaps is the capability change of a host folder's virtiofsd.
const bindModcaps = "modcaps=-chown:-fsetid:-mknod:-setfcap"

func readSmall(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(data)
}

// shareSource is sh's directory as an absolute path, or why it cannot be
// shared (for a host folder, also a symbolic link in its path).
func shareSource(sh vm.Share) (string, error) {
	src, err := filepath.Abs(sh.HostPath)
	if err != nil {
		return "", fmt.Errorf("share %q: %w", sh.Tag, err)
	}
	if info, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("share %q: %w", sh.Tag, err)
	} else if !info.IsDir() {
		return "", fmt.Errorf("share %q: %s is not a directory: %w", sh.Tag, src, vm.ErrInvalidSpec)
	}
	if sh.Tag != vm.RootShareTag {
		d, err := openDirNoFollow(src)
		if err != nil {
			return "", fmt.Errorf("share %q: %w", sh.Tag, err)
		}
		d.Close()
	}
	return src, nil
}
