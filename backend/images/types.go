package images

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/skiff-containers/skiff/backend/images/internal/tarpath"
)

// Errors callers branch on with errors.Is. Messages wrap them with the image or entry concerned.
var (
	// ErrNotFound: no such image in the store (Get, Remove, Ensure with PullNever), or no such
	// reference in the registry.
	ErrNotFound = errors.New("image not found")
	// ErrInUse: Remove of an image a container uses, without force.
	ErrInUse = errors.New("image is in use by a container")
	// ErrPlatformNotFound: the image has no variant for the requested platform; the message lists
	// the platforms it has.
	ErrPlatformNotFound = errors.New("no matching platform")
	// ErrUnsafeEntry: a layer entry would create, change or remove something outside the rootfs.
	ErrUnsafeEntry = tarpath.ErrUnsafeEntry
	// ErrInvalidReference: the reference does not parse.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrDigestMismatch: downloaded or loaded content does not match its digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnsupported: a manifest or layer type the store cannot unpack.
	ErrUnsupported = errors.New("unsupported content")
	// ErrTooLarge: a layer unpacks to more bytes than the store allows (WithMaxLayerSize), or
	// archive metadata (index.json, a manifest, a config) is larger than any real one.
	ErrTooLarge = errors.New("content too large")
)

// PullPolicy says when Ensure contacts the registry.
type PullPolicy string

const (
	PullAlways  PullPolicy = "always"  // always resolve the reference in the registry
	PullMissing PullPolicy = "missing" // pull only when the image is not in the store (default)
	PullNever   PullPolicy = "never"   // use the store only; ErrNotFound when absent
)

// ParsePullPolicy accepts "always", "missing", "never" and "" (missing).
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch PullPolicy(s) {
	case "":
		return PullMissing, nil
	case PullAlways, PullMissing, PullNever:
		return PullPolicy(s), nil
	}
	return "", fmt.Errorf("invalid pull policy %q (want always, missing or never)", s)
}

// Progress is one update about one layer of a pull (or load). Ref is the reference being pulled.
// Status is "waiting", "downloading", "verifying", "extracting", "done" or "exists" (already in the
// content store); Done and Total count compressed bytes. Then the image's disk: StatusBuildingDisk
// (Layer is the image ID; Done and Total count bytes of file content) and StatusDiskReady.
type Progress struct {
	Ref    string
	Layer  string // digest
	Done   int64
	Total  int64
	Status string
}

// ImageConfig is the part of the OCI image config a container runtime uses.
type ImageConfig struct {
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"` // "80/tcp", sorted
	Volumes      []string          `json:"volumes,omitempty"`      // sorted
	Labels       map[string]string `json:"labels,omitempty"`
	Healthcheck  *HealthConfig     `json:"healthcheck,omitempty"`
}

// HealthConfig is a container health check (Docker's HEALTHCHECK). Test is ["CMD", args...],
// ["CMD-SHELL", command], ["NONE"] (no check) or empty (inherit the image's); a zero duration or
// retry count inherits too.
type HealthConfig struct {
	Test          []string      `json:"test,omitempty"`
	Interval      time.Duration `json:"interval,omitempty"`      // between checks
	Timeout       time.Duration `json:"timeout,omitempty"`       // a check taking longer fails
	StartPeriod   time.Duration `json:"startPeriod,omitempty"`   // failures in it do not count
	StartInterval time.Duration `json:"startInterval,omitempty"` // between checks in the start period
	Retries       int           `json:"retries,omitempty"`       // consecutive failures to be unhealthy
}

// Image is an image present in the store: its disk built (Store.Disk) and ready to run.
type Image struct {
	ID          string      `json:"id"`     // "sha256:<config digest>"
	Digest      string      `json:"digest"` // manifest digest (of the platform's image manifest)
	RepoTags    []string    `json:"repoTags"`
	RepoDigests []string    `json:"repoDigests"`
	Platform    string      `json:"platform"` // "linux/amd64", "linux/arm64/v8"
	Created     time.Time   `json:"created"`
	Size        int64       `json:"size"` // bytes of file content in the image's filesystem
	Config      ImageConfig `json:"config"`
}

// PullOptions tune Ensure and Pull. Progress may be nil; calls to it are serialised.
type PullOptions struct {
	Policy   PullPolicy          // Ensure only; "" is PullMissing
	Platform string              // "" is the store's platform (WithPlatform, else linux/<host arch>)
	Progress func(Progress)      // per-layer updates
	Auth     authn.Authenticator // registry credentials; nil uses the store's keychain
}

// DiskUsage is what the store occupies on disk.
type DiskUsage struct {
	Images     int   `json:"images"`     // images present
	RootFSSize int64 `json:"rootfsSize"` // bytes of file content in the images' filesystems
	Disks      int   `json:"disks"`      // image disks (one per distinct filesystem)
	DisksSize  int64 `json:"disksSize"`  // bytes the image disks occupy on the host (they are sparse)
	Blobs      int   `json:"blobs"`      // blobs in the content store
	BlobsSize  int64 `json:"blobsSize"`  // bytes of the content store (compressed layers, manifests, configs)
	// UnpackedSize: bytes of the rootfs directories of images unpacked before image disks, which
	// stay on the host until each is converted (its first Disk) or removed.
	UnpackedSize int64 `json:"unpackedSize"`
	Reclaimable  int64 `json:"reclaimable"` // bytes Prune would free now
	Total        int64 `json:"total"`       // DisksSize + BlobsSize + UnpackedSize
}
