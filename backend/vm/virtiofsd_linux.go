package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
)

// DefaultVirtiofsd is QEMU's bundled virtiofsd on Debian.
const DefaultVirtiofsd = "/usr/lib/qemu/virtiofsd"

// startVirtiofsd starts one daemon serving sh and returns the process and
// the client end of its vhost-user socket (for QEMU's chardev).
//
// Debian 12's C virtiofsd has no read-only option, so a read-only share runs
// the daemon in its own mount namespace where the source is bind-mounted
// read-only over itself before exec; with sandbox=chroot the daemon can only
// see that mount, so every write from the guest fails with EROFS. The
// namespace (and the mount) vanish with the process.
//
// Every share but the rootfs is a host folder the guest must not use to
// plant privileges on the host (a guest root is root to virtiofsd, which
// runs as root): its daemon keeps no CAP_CHOWN, CAP_FSETID, CAP_MKNOD or
// CAP_SETFCAP (no chown to root, writes clear setuid bits, no device
// nodes), and runs under proc.NewNoSetidSpawner's seccomp filter (no
// setuid or setgid bit by chmod or create, which capabilities cannot stop
// for a file virtiofsd owns). A file a guest root creates there is still
// root's on the host (this virtiofsd maps no IDs). The rootfs keeps them
// all: an image holds root-owned setuid files and device nodes.
func (h *qemuHypervisor) startVirtiofsd(sh Share, stateDir string) (*exec.Cmd, *os.File, error) {
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
	if sh.Tag == RootShareTag {
		cache = "auto"
	}
	args := []string{"--fd=3", "-o", "source=" + src, "-o", "cache=" + cache, "-o", "sandbox=chroot",
		"-o", "log_level=warn"}
	spawn := h.spawn
	if sh.Tag != RootShareTag {
		args = append(args, "-o", bindModcaps)
		if spawn = h.spawnBind; spawn == nil {
			cli.Close()
			return nil, nil, fmt.Errorf("share %q: %w", sh.Tag, h.spawnBindErr)
		}
	}
	cmd := exec.Command(h.virtiofsd, args...)
	if sh.ReadOnly {
		script := `mount --bind -o ro "$0" "$0" && exec "$@"`
		cmd = exec.Command("/bin/sh", append([]string{"-c", script, src, h.virtiofsd}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // Go makes / private first
	}
	cmd.ExtraFiles = []*os.File{lis}
	logf, err := os.OpenFile(filepath.Join(stateDir, "virtiofsd-"+sh.Tag+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("share %q: %w", sh.Tag, err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := spawn.Start(cmd); err != nil {
		cli.Close()
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
// shared.
func shareSource(sh Share) (string, error) {
	src, err := filepath.Abs(sh.HostPath)
	if err != nil {
		return "", fmt.Errorf("share %q: %w", sh.Tag, err)
	}
	if info, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("share %q: %w", sh.Tag, err)
	} else if !info.IsDir() {
		return "", fmt.Errorf("share %q: %s is not a directory: %w", sh.Tag, src, ErrInvalidSpec)
	}
	return src, nil
}
