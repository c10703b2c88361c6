//go:build linux

package agent

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/shmring"
)

// ivshmem's PCI IDs (QEMU's ivshmem-plain).
const (
	ivshmemVendor = "0x1af4"
	ivshmemDevice = "0x1110"
)

// pciDevices is where the agent looks for the ring's device.
const pciDevices = "/sys/bus/pci/devices"

// ringWait bounds the wait for a hot-plugged ring device and its resource files.
const ringWait = 5 * time.Second

// ringMapping is the ring's memory being mapped (mapRing) on a goroutine of
// its own: a restored VM maps it while it mounts its root, the two waiting
// for their hot-plugged devices at once.
type ringMapping struct {
	done chan struct{} // closed once mem, err are set
	mem  []byte
	err  error
}

// mapRingAhead starts mapping the ring found under sysfs.
func mapRingAhead(sysfs string, wait time.Duration) *ringMapping {
	r := &ringMapping{done: make(chan struct{})}
	go func() {
		r.mem, r.err = mapRing(sysfs, wait)
		close(r.done)
	}()
	return r
}

// result waits for the mapping.
func (r *ringMapping) result() ([]byte, error) {
	<-r.done
	return r.mem, r.err
}

// drop unmaps the memory once mapped, for a mapping no channel will use.
func (r *ringMapping) drop() {
	go func() {
		if mem, err := r.result(); err == nil {
			unix.Munmap(mem)
		}
	}()
}

// channelOn serves (docs/contracts.md, "Shared-memory channel": with
// skiff.ring=1 the agent's first line on the port is agentproto.RingOK or
// agentproto.RingOff and why) yamux on the serial port rw, or on the ring when the
// host offered one and the device is there. ring is its mapping when started
// ahead, nil to map it now.
func channelOn(log *zap.Logger, rw io.ReadWriteCloser, boot agentproto.Boot, ring *ringMapping) (net.Listener, error) {
	if !boot.Ring {
		if ring != nil {
			ring.drop()
		}
		return muxListener(rw)
	}
	if ring == nil {
		ring = mapRingAhead(pciDevices, ringWait)
	}
	mem, err := ring.result()
	if err == nil {
		var c *shmring.Conn
		if c, err = shmring.New(mem, shmring.Guest, rw, func() { unix.Munmap(mem) }); err == nil {
			if _, err := io.WriteString(rw, agentproto.RingOK+"\n"); err != nil {
				rw.Close()
				return nil, fmt.Errorf("agent channel: %w", err)
			}
			log.Info("agent channel on the shared-memory ring", zap.Int("bytes", len(mem)))
			return muxListener(c)
		}
		unix.Munmap(mem)
	}
	log.Warn("shared-memory ring", zap.Error(err))
	if _, err := io.WriteString(rw, agentproto.RingOff+strings.ReplaceAll(err.Error(), "\n", " ")+"\n"); err != nil {
		rw.Close()
		return nil, fmt.Errorf("agent channel: %w", err)
	}
	return muxListener(rw)
}

// mapRing finds the ivshmem device under sysfs (waiting up to wait for a
// hot-plugged one to be probed), enables it and maps its shared-memory BAR.
func mapRing(sysfs string, wait time.Duration) ([]byte, error) {
	// A hot-plugged device's directory appears before its resource files.
	deadline := time.Now().Add(wait)
	var dev string
	others := map[string]bool{} // devices already seen to be another
	for {
		dev = findPCI(sysfs, ivshmemVendor, ivshmemDevice, others)
		if dev != "" {
			if _, err := os.Stat(filepath.Join(dev, "resource2")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			if dev != "" {
				return nil, fmt.Errorf("ivshmem device %s has no memory BAR after %s", dev, wait)
			}
			return nil, fmt.Errorf("no ivshmem device (%s:%s) in %s after %s", ivshmemVendor, ivshmemDevice, sysfs, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(dev, "enable"), []byte("1"), 0); err != nil {
		return nil, fmt.Errorf("enabling %s: %w", dev, err)
	}
	// Write-combining where the kernel offers it: arm64 maps plain
	// resource files as Device memory, where unaligned copies fault.
	res := filepath.Join(dev, "resource2_wc")
	if _, err := os.Stat(res); err != nil {
		res = filepath.Join(dev, "resource2")
	}
	f, err := os.OpenFile(res, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the ring's memory: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping %s (%d bytes): %w", res, st.Size(), err)
	}
	return mem, nil
}

// findPCI returns the sysfs directory of the first PCI device with the
// given IDs, or "". others holds the names of devices known to have other
// IDs, skipped, and gets those it reads (a poll while a device is hot-plugged
// reads each device's IDs once; nil: read them all).
func findPCI(sysfs, vendor, device string, others map[string]bool) string {
	ents, _ := os.ReadDir(sysfs)
	for _, e := range ents {
		if others[e.Name()] {
			continue
		}
		dir := filepath.Join(sysfs, e.Name())
		d, err := os.ReadFile(filepath.Join(dir, "device"))
		if err != nil {
			continue // not all there yet
		}
		if strings.TrimSpace(string(d)) != device {
			if others != nil {
				others[e.Name()] = true
			}
			continue
		}
		if v, _ := os.ReadFile(filepath.Join(dir, "vendor")); strings.TrimSpace(string(v)) == vendor {
			return dir
		}
	}
	return ""
}
