package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/zap"
)

// On-disk layout under the store directory:
//
//	blobs/sha256/<hex>       content store: compressed layers, manifests, configs (verified)
//	blobs/ingest/            partial downloads (removed on the next pull)
//	images/<id hex>/         one image: image.json (its record); from before image disks also
//	                         rootfs/ and owners, which its first Disk removes (the disk is built
//	                         from the blobs; Open logs how many are left)
//	images/.unpack-*/        an install in progress; List never shows it, the next pull removes it
//	disks/                   the images' read-only ext4 disks (imagedisk.go)
//	images/.rm-*/            an image being removed
//	refs.json                reference ("docker.io/library/busybox:latest", "…@sha256:…") → image ID
const (
	recordFile   = "image.json"
	legacyRootfs = "rootfs" // an image unpacked before image disks
	legacyOwners = "owners"
	refsFile     = "refs.json"
)

// Store is the image store. Its methods are safe for concurrent use; one process should own a store
// directory at a time.
type Store struct {
	dir      string
	log      *zap.Logger
	platform v1.Platform
	inUse    func(imageID string) bool
	keychain authn.Keychain
	jobs     int
	maxLayer int64 // bytes a layer may uncompress to, and unpack to (WithMaxLayerSize)
	portable bool  // unpack with the portable resolver (tests of the darwin code path on Linux)

	// gcMu is held shared by pulls and loads (whose blobs no record references yet) and exclusively
	// while Remove and Prune delete blobs and images.
	gcMu sync.RWMutex
	// refsMu guards refs.json (read-modify-write).
	refsMu sync.Mutex
	// flightMu guards flights: pulls in progress by reference and platform.
	flightMu sync.Mutex
	flights  map[string]*flight
	// locks serialises work on one blob digest or one image ID.
	locks keyedMutex
}

// Option configures Open.
type Option func(*Store)

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(s *Store) { s.log = l } }

// WithPlatform sets the default platform, "os/arch[/variant]" (default linux/<host arch>).
func WithPlatform(p string) Option {
	return func(s *Store) {
		if pl, err := v1.ParsePlatform(p); err == nil {
			s.platform = *pl
		}
	}
}

// WithInUse tells the store which images containers use: Remove refuses those unless forced, and
// Prune keeps them.
func WithInUse(f func(imageID string) bool) Option { return func(s *Store) { s.inUse = f } }

// WithKeychain sets where registry credentials come from (default: the Docker keychain,
// ~/.docker/config.json and its credential helpers).
func WithKeychain(k authn.Keychain) Option { return func(s *Store) { s.keychain = k } }

// WithConcurrency bounds concurrent layer downloads per pull (default 4).
func WithConcurrency(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.jobs = n
		}
	}
}

// DefaultMaxLayerSize is how many bytes one layer may uncompress to, and write into a rootfs, unless
// WithMaxLayerSize says otherwise: far above any real layer, low enough that a compression bomb or a
// sparse tar entry claiming terabytes stops long before the disk is full.
const DefaultMaxLayerSize int64 = 64 << 30

// WithMaxLayerSize bounds the bytes one layer may uncompress to and write into a rootfs (default
// DefaultMaxLayerSize). A layer beyond it fails its pull or load with ErrTooLarge, and the partial
// rootfs is removed.
func WithMaxLayerSize(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxLayer = n
		}
	}
}

// Open opens (creating) the store in dir and removes what an interrupted pull left behind: a process
// opens a store only when no other process uses it (the daemon holds the data dir's lock first).
func Open(dir string, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening image store %q: %w", dir, err)
	}
	s := &Store{
		dir:      abs,
		log:      zap.NewNop(),
		platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		inUse:    func(string) bool { return false },
		keychain: authn.DefaultKeychain,
		jobs:     4,
		maxLayer: DefaultMaxLayerSize,
		flights:  map[string]*flight{},
	}
	for _, o := range opts {
		o(s)
	}
	for _, d := range []string{s.blobDir(), s.ingestDir(), s.imagesDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("opening image store %q: %w", dir, err)
		}
	}
	s.cleanStale(true)
	if n := s.legacyImages(); n > 0 {
		s.log.Info("images from before image disks: each one's disk is built from its layers on first use "+
			"(the first container created from it), and its unpacked directory removed then", zap.Int("images", n))
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobDir() string           { return filepath.Join(s.dir, "blobs", "sha256") }
func (s *Store) ingestDir() string         { return filepath.Join(s.dir, "blobs", "ingest") }
func (s *Store) imagesDir() string         { return filepath.Join(s.dir, "images") }
func (s *Store) imageDir(id string) string { return filepath.Join(s.imagesDir(), hexOf(id)) }
func (s *Store) blobPath(dg string) string { return filepath.Join(s.blobDir(), hexOf(dg)) }
func hexOf(digest string) string           { return strings.TrimPrefix(digest, "sha256:") }
func shortID(id string) string {
	h := hexOf(id)
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// cleanStale removes partial downloads, unpacks and removals left by an interrupted pull or a crash.
// Pulls keep such directories only while they hold gcMu shared, so with gcMu held exclusively every
// one of them is stale. It does not wait: when another pull is running, a later pull cleans up.
// Loads spool their archive in blobs/ingest/load-* without holding gcMu, so only Open (all) removes
// those.
func (s *Store) cleanStale(all bool) {
	if !s.gcMu.TryLock() {
		return
	}
	defer s.gcMu.Unlock()
	if ents, err := os.ReadDir(s.ingestDir()); err == nil {
		for _, e := range ents {
			if all || !strings.HasPrefix(e.Name(), "load-") {
				os.RemoveAll(filepath.Join(s.ingestDir(), e.Name()))
			}
		}
	}
	if ents, err := os.ReadDir(s.imagesDir()); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				s.log.Debug("removing partial image directory", zap.String("name", e.Name()))
				forceRemoveAll(filepath.Join(s.imagesDir(), e.Name()))
			}
		}
	}
	if ents, err := os.ReadDir(s.disksDir()); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") { // a disk build that did not finish
				os.Remove(filepath.Join(s.disksDir(), e.Name()))
			}
		}
	}
}

// forceRemoveAll removes a tree even when an image made some of its directories read-only.
func forceRemoveAll(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// record is image.json: what the store knows about one image beyond its rootfs.
type record struct {
	ID                string      `json:"id"`
	Digest            string      `json:"digest"`
	ManifestMediaType string      `json:"manifestMediaType"`
	Platform          string      `json:"platform"`
	Created           time.Time   `json:"created"`
	Size              int64       `json:"size"`
	Config            ImageConfig `json:"config"`
	Layers            []string    `json:"layers"` // compressed digests, base first
}

func (s *Store) readRecord(id string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(s.imageDir(id), recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", shortID(id), ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("image %s: reading record: %w", shortID(id), err)
	}
	return &r, nil
}

func (s *Store) records() ([]*record, error) {
	ents, err := os.ReadDir(s.imagesDir())
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	var out []*record
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		r, err := s.readRecord("sha256:" + e.Name())
		if err != nil {
			continue // not (yet) an image
		}
		out = append(out, r)
	}
	return out, nil
}

// readRefs returns refs.json. Callers that write it back hold refsMu.
func (s *Store) readRefs() (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, refsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	if err := json.Unmarshal(b, &refs); err != nil {
		return nil, fmt.Errorf("reading %s: %w", refsFile, err)
	}
	return refs, nil
}

func (s *Store) writeRefs(refs map[string]string) error {
	b, err := json.MarshalIndent(refs, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, refsFile), b)
}

// setRefs points each of names at id (a tag moves from the image it named before).
func (s *Store) setRefs(id string, names ...string) error {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	refs, err := s.readRefs()
	if err != nil {
		return err
	}
	changed := false
	for _, n := range names {
		if n != "" && refs[n] != id {
			refs[n] = id
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return s.writeRefs(refs)
}

func (s *Store) toImage(r *record, refs map[string]string) Image {
	img := Image{
		ID: r.ID, Digest: r.Digest, Platform: r.Platform, Created: r.Created, Size: r.Size,
		Config:   r.Config,
		RepoTags: []string{}, RepoDigests: []string{},
	}
	for ref, id := range refs {
		if id != r.ID {
			continue
		}
		if strings.Contains(ref, "@") {
			img.RepoDigests = append(img.RepoDigests, ref)
		} else {
			img.RepoTags = append(img.RepoTags, ref)
		}
	}
	sort.Strings(img.RepoTags)
	sort.Strings(img.RepoDigests)
	return img
}

// Get returns an image by reference ("busybox", "docker.io/library/busybox:latest",
// "busybox@sha256:…"), by ID ("sha256:…") or by a unique ID prefix of at least 4 hex digits.
func (s *Store) Get(ctx context.Context, refOrID string) (*Image, error) {
	id, err := s.resolve(refOrID)
	if err != nil {
		return nil, err
	}
	r, err := s.readRecord(id)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", refOrID, ErrNotFound)
	}
	refs, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	img := s.toImage(r, refs)
	return &img, nil
}

// resolve maps a reference or (partial) ID to an image ID present in the store.
func (s *Store) resolve(refOrID string) (string, error) {
	q := strings.TrimSpace(refOrID)
	if h := strings.TrimPrefix(q, "sha256:"); isHex(h) && len(h) >= 4 {
		if len(h) == 64 {
			if _, err := os.Stat(filepath.Join(s.imagesDir(), h, recordFile)); err == nil {
				return "sha256:" + h, nil
			}
		} else if id, err := s.byPrefix(h); err == nil || !errors.Is(err, ErrNotFound) {
			return id, err
		}
		if strings.HasPrefix(q, "sha256:") {
			return "", fmt.Errorf("image %q: %w", refOrID, ErrNotFound)
		}
	}
	norm, err := NormalizeRef(q)
	if err != nil {
		return "", err
	}
	refs, err := s.readRefs()
	if err != nil {
		return "", err
	}
	if id, ok := refs[norm]; ok {
		if _, err := os.Stat(filepath.Join(s.imageDir(id), recordFile)); err == nil {
			return id, nil
		}
	}
	if at := strings.IndexByte(norm, '@'); at >= 0 {
		// A platform manifest digest of an image pulled through its index.
		dg := norm[at+1:]
		recs, _ := s.records()
		for _, r := range recs {
			if r.Digest == dg {
				for ref, id := range refs {
					if id == r.ID && repoOf(ref) == norm[:at] {
						return r.ID, nil
					}
				}
			}
		}
	}
	return "", fmt.Errorf("image %q: %w", refOrID, ErrNotFound)
}

func (s *Store) byPrefix(h string) (string, error) {
	ents, err := os.ReadDir(s.imagesDir())
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), h) {
			if _, err := os.Stat(filepath.Join(s.imagesDir(), e.Name(), recordFile)); err == nil {
				found = append(found, e.Name())
			}
		}
	}
	switch len(found) {
	case 0:
		return "", ErrNotFound
	case 1:
		return "sha256:" + found[0], nil
	}
	return "", fmt.Errorf("image ID prefix %q is ambiguous (%d images)", h, len(found))
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// List returns the images present, newest first.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	refs, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(recs))
	for _, r := range recs {
		out = append(out, s.toImage(r, refs))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
