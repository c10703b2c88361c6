package engine

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/skiff-containers/skiff/backend/images"
)

// attachVolumes resolves the volume mounts of a container being created from img: each image
// VOLUME no mount covers gets an anonymous volume (as in Docker), each volume mount its volume
// (made when missing) and that volume's directory as its Source. A volume that is empty is filled
// with the image's content at the mount's target (Docker's copy-up) by the guest agent when it
// mounts the volume (fillsVolume). The volumes stay pinned
// (RemoveVolume refuses them) until release; undo removes the volumes this call made, for a
// Create that fails after it.
func (e *Engine) attachVolumes(ctx context.Context, mounts []Mount, img *images.Image) (out []Mount, release, undo func(), err error) {
	out = append([]Mount(nil), mounts...)
	covered := map[string]bool{}
	for _, m := range out {
		covered[m.Target] = true
	}
	for _, t := range img.Config.Volumes {
		t = filepath.Clean("/" + t)
		if !covered[t] && t != "/" {
			out = append(out, Mount{Type: MountVolume, Target: t})
			covered[t] = true
		}
	}
	var pinned, made []string
	release = func() {
		e.vmu.Lock()
		defer e.vmu.Unlock()
		for _, n := range pinned {
			if e.volPending[n]--; e.volPending[n] <= 0 {
				delete(e.volPending, n)
			}
		}
		pinned = nil
	}
	undo = func() {
		release()
		for _, n := range made {
			if err := e.RemoveVolume(context.WithoutCancel(ctx), n, true); err != nil {
				e.log.Warn("removing a volume made for a failed create", zapStr("volume", n), zapErr(err))
			}
		}
	}
	e.vmu.Lock()
	for i := range out {
		m := &out[i]
		if m.Type != MountVolume {
			continue
		}
		v, created, err := e.createVolumeLocked(VolumeOptions{Name: m.Name, Anonymous: m.Name == ""})
		if err != nil {
			e.vmu.Unlock()
			undo()
			return nil, nil, nil, err
		}
		if created {
			made = append(made, v.Name)
		}
		if e.volPending == nil {
			e.volPending = map[string]int{}
		}
		e.volPending[v.Name]++
		pinned = append(pinned, v.Name)
		m.Name, m.Source, m.Disk = v.Name, v.Mountpoint, !v.Shared
	}
	e.vmu.Unlock()
	for i := range out {
		m := &out[i]
		if m.Type != MountVolume || m.Disk {
			continue
		}
		real, err := filepath.EvalSymlinks(m.Source)
		if err != nil {
			undo()
			return nil, nil, nil, fmt.Errorf("volume %q: %w", m.Name, err)
		}
		m.Real = real
	}
	return out, release, undo, nil
}

// fillsVolume reports whether the agent is to fill m's share, when empty, from the container root's
// content at m.Target before mounting it (agentproto.MountSpec.Fill): a volume mount without NoCopy.
func fillsVolume(m Mount) bool {
	return m.Type == MountVolume && !m.NoCopy
}
