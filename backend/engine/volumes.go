package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/skiff-containers/skiff/backend/images/disk"
)

// Volumes live in the data dir:
//
//	<home>/volumes/<name>/volume.json  the record (written atomically)
//	<home>/volumes/<name>/volume.ext4  a disk volume's content: a sparse ext4 image, attached to the
//	                                   VM of a container that mounts it as a block device (voldisk.go)
//	<home>/volumes/<name>/_data/       a shared-folder volume's content (--opt shared=true, and every
//	                                   volume made before disk volumes), shared into each VM that
//	                                   mounts it (virtiofs)
//	<home>/volumes/.rm-<name>/         a volume being removed (deleted at the next Open)
//
// A disk volume keeps owners, modes and xattrs and runs at block-device speed, but only one running
// VM may write it; a shared-folder volume can be mounted by several at once, but its files all
// belong to the engine's user on the host (a chown in the guest fails).
const (
	volumeRecord  = "volume.json"
	volumeDataDir = "_data"
	// AnonymousLabel marks a volume made for one container (an image's VOLUME, -v /path), as Docker
	// marks them; Remove with Volumes removes them with the container.
	AnonymousLabel = "com.docker.volume.anonymous"
)

// Volume is a named volume.
type Volume struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"` // always "local"
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	Anonymous bool              `json:"anonymous,omitempty"`
	// Mountpoint is where the content is on the host: a disk volume's ext4 image file, a
	// shared-folder volume's directory.
	Mountpoint string `json:"mountpoint"`
	// Shared: a shared-folder volume (a directory over virtiofs); false: a disk volume.
	Shared bool `json:"shared,omitempty"`
	// Size is a disk volume's capacity in bytes (its file is sparse: see VolumeSize for the use).
	Size int64 `json:"size,omitempty"`
	// UsedBy lists the IDs of the containers (any state) that mount the volume (List and Inspect).
	UsedBy []string `json:"usedBy,omitempty"`
}

// VolumeOptions create a volume. Name empty: a random one (an anonymous volume when Anonymous).
type VolumeOptions struct {
	Name      string
	Labels    map[string]string
	Driver    string            // "" or "local"
	Options   map[string]string // driver options: size=<size> (a disk volume's) or shared=true
	Anonymous bool
}

var volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidVolumeName checks a volume name (Docker's rule: two or more of [a-zA-Z0-9_.-], not
// starting with '.', '_' or '-').
func ValidVolumeName(s string) error {
	if !volumeNameRE.MatchString(s) || len(s) > 255 {
		return parseErr("volume name", s, "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two characters")
	}
	return nil
}

func (e *Engine) volumesDir() string           { return filepath.Join(e.home, "volumes") }
func (e *Engine) volumeDir(name string) string { return filepath.Join(e.volumesDir(), name) }
func (e *Engine) volumeData(name string) string {
	return filepath.Join(e.volumeDir(name), volumeDataDir)
}

// CreateVolume creates a volume, or returns the existing one of that name (as Docker does, when
// its driver matches).
func (e *Engine) CreateVolume(ctx context.Context, opts VolumeOptions) (*Volume, error) {
	e.vmu.Lock()
	defer e.vmu.Unlock()
	v, _, err := e.createVolumeLocked(opts)
	if err != nil {
		return nil, err
	}
	return e.withUsers(v), nil
}

// createVolumeLocked makes the volume; created is false when it existed. e.vmu is held.
func (e *Engine) createVolumeLocked(opts VolumeOptions) (*Volume, bool, error) {
	if opts.Driver != "" && opts.Driver != "local" {
		return nil, false, fmt.Errorf("volume driver %q: only the local driver is supported: %w", opts.Driver, ErrNotSupported)
	}
	shared, size, options, err := parseVolumeOptions(opts.Options)
	if err != nil {
		return nil, false, err
	}
	if opts.Name == "" {
		opts.Name = randomVolumeName()
	} else if err := ValidVolumeName(opts.Name); err != nil {
		return nil, false, err
	}
	if v, err := e.readVolume(opts.Name); err == nil {
		return v, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	labels := copyLabels(opts.Labels)
	if opts.Anonymous {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	v := &Volume{Name: opts.Name, Driver: "local", Labels: labels, Options: options, CreatedAt: time.Now().UTC(),
		Anonymous: opts.Anonymous, Shared: shared, Size: size}
	dir := e.volumeDir(v.Name)
	if err := os.MkdirAll(e.volumesDir(), 0o700); err != nil {
		return nil, false, fmt.Errorf("creating volume %q: %w", v.Name, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("creating volume %q: %w", v.Name, err)
	}
	fail := func(err error) (*Volume, bool, error) {
		_ = removeAll(dir)
		return nil, false, fmt.Errorf("creating volume %q: %w", v.Name, err)
	}
	if shared {
		if err := os.Mkdir(filepath.Join(dir, volumeDataDir), 0o755); err != nil {
			return fail(err)
		}
	} else if err := disk.FormatEmpty(e.volumeDisk(v.Name), size); err != nil {
		return fail(err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, volumeRecord), b, 0o600); err != nil {
		return fail(err)
	}
	v.Mountpoint = e.volumeContent(v.Name, shared)
	e.emit("volume", "create", v.Name, v.Name, map[string]string{"driver": "local"})
	return v, true, nil
}

func randomVolumeName() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// readVolume loads a volume's record (ErrNotFound when there is none).
func (e *Engine) readVolume(name string) (*Volume, error) {
	if ValidVolumeName(name) != nil {
		return nil, fmt.Errorf("no such volume %q: %w", name, ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(e.volumeDir(name), volumeRecord))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no such volume %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading volume %q: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("reading volume %q: %w", name, err)
	}
	// A volume without its disk image is a shared folder (every volume made before disk volumes).
	_, err = os.Lstat(e.volumeDisk(name))
	v.Shared = err != nil
	v.Name, v.Driver, v.Mountpoint = name, "local", e.volumeContent(name, v.Shared)
	return &v, nil
}

// volumeUsers maps each volume name to the containers mounting it.
func (e *Engine) volumeUsers() map[string][]string {
	e.mu.Lock()
	cs := make([]*ctr, 0, len(e.ctrs))
	for _, c := range e.ctrs {
		cs = append(cs, c)
	}
	e.mu.Unlock()
	users := map[string][]string{}
	for _, c := range cs {
		c.mu.Lock()
		for _, m := range c.rec.Mounts {
			if m.Type == MountVolume {
				users[m.Name] = append(users[m.Name], c.rec.ID)
			}
		}
		c.mu.Unlock()
	}
	for n := range users {
		sort.Strings(users[n])
	}
	return users
}

func (e *Engine) withUsers(v *Volume) *Volume {
	v.UsedBy = e.volumeUsers()[v.Name]
	return v
}

// Volumes lists the volumes, by name.
func (e *Engine) Volumes(ctx context.Context) ([]Volume, error) {
	ents, err := os.ReadDir(e.volumesDir())
	if errors.Is(err, os.ErrNotExist) {
		return []Volume{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing volumes: %w", err)
	}
	users := e.volumeUsers()
	out := []Volume{}
	for _, ent := range ents {
		if !ent.IsDir() || strings.HasPrefix(ent.Name(), removingPrefix) {
			continue
		}
		v, err := e.readVolume(ent.Name())
		if err != nil {
			continue // half made (a crash while creating): not a volume
		}
		v.UsedBy = users[v.Name]
		out = append(out, *v)
	}
	return out, nil
}

// InspectVolume returns one volume.
func (e *Engine) InspectVolume(ctx context.Context, name string) (*Volume, error) {
	v, err := e.readVolume(name)
	if err != nil {
		return nil, err
	}
	return e.withUsers(v), nil
}

// RemoveVolume removes a volume and its content. A volume a container mounts (in any state) is
// refused with ErrConflict naming the containers, force or not (as Docker does); force only makes a
// missing volume no error.
func (e *Engine) RemoveVolume(ctx context.Context, name string, force bool) error {
	e.vmu.Lock()
	defer e.vmu.Unlock()
	err := e.removeVolumeLocked(name)
	if force && errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (e *Engine) removeVolumeLocked(name string) error {
	if _, err := e.readVolume(name); err != nil {
		return err
	}
	if users := e.volumeUsers()[name]; len(users) > 0 || e.volPending[name] > 0 {
		short := make([]string, len(users))
		for i, u := range users {
			short[i] = ShortID(u)
		}
		return fmt.Errorf("volume %q is in use by container(s) [%s]: %w", name, strings.Join(short, ", "), ErrConflict)
	}
	dir := e.volumeDir(name)
	gone := filepath.Join(e.volumesDir(), removingPrefix+name)
	if err := os.Rename(dir, gone); err != nil {
		return fmt.Errorf("removing volume %q: %w", name, err)
	}
	if err := removeAll(gone); err != nil {
		e.log.Warn("removing a volume's content (retried at the next start)", zapStr("volume", name), zapErr(err))
	}
	e.emit("volume", "destroy", name, name, nil)
	return nil
}

// PruneVolumes removes the volumes no container mounts for which match says yes, returning their
// names and the bytes freed.
func (e *Engine) PruneVolumes(ctx context.Context, match func(Volume) bool) ([]string, int64, error) {
	e.vmu.Lock()
	defer e.vmu.Unlock()
	vols, err := e.Volumes(ctx)
	if err != nil {
		return nil, 0, err
	}
	var removed []string
	var freed int64
	for _, v := range vols {
		if len(v.UsedBy) > 0 || e.volPending[v.Name] > 0 || (match != nil && !match(v)) {
			continue
		}
		size := volumeBytes(&v)
		if err := e.removeVolumeLocked(v.Name); err != nil {
			if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
				continue
			}
			return removed, freed, err
		}
		removed = append(removed, v.Name)
		freed += size
	}
	return removed, freed, nil
}

// VolumeSize is the bytes a volume takes on the host: a disk volume's blocks in use (its image is
// sparse), a shared-folder volume's file content.
func (e *Engine) VolumeSize(ctx context.Context, name string) (int64, error) {
	v, err := e.readVolume(name)
	if err != nil {
		return 0, err
	}
	return volumeBytes(v), nil
}

func volumeBytes(v *Volume) int64 {
	if v.Shared {
		return dirSize(v.Mountpoint)
	}
	return fileBlocks(v.Mountpoint)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// cleanVolumes deletes what removals interrupted by a crash left (Open).
func (e *Engine) cleanVolumes() {
	ents, _ := os.ReadDir(e.volumesDir())
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), removingPrefix) {
			_ = removeAll(filepath.Join(e.volumesDir(), ent.Name()))
		}
	}
}
