package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/zap"
)

// Ensure returns the image for ref, pulling it as opts.Policy says: PullMissing (default) pulls only
// when the store lacks it (or has it for another platform than opts.Platform), PullAlways resolves
// the reference in the registry every time, PullNever fails with ErrNotFound when it is absent.
func (s *Store) Ensure(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	policy, err := ParsePullPolicy(string(opts.Policy))
	if err != nil {
		return nil, err
	}
	if policy != PullAlways {
		img, err := s.Get(ctx, ref)
		switch {
		case err == nil && s.platformMatches(img, opts.Platform):
			return img, nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return nil, err
		case policy == PullNever:
			return nil, fmt.Errorf("image %q is not present and the pull policy is never: %w", ref, ErrNotFound)
		case looksLikeID(ref):
			return nil, err // an image ID names no registry to pull from
		}
	}
	return s.Pull(ctx, ref, opts)
}

func (s *Store) platformMatches(img *Image, want string) bool {
	if want == "" {
		return true
	}
	w, err := v1.ParsePlatform(want)
	if err != nil {
		return false
	}
	have, err := v1.ParsePlatform(img.Platform)
	return err == nil && platformMatch(*w, *have)
}

// Pull resolves ref in its registry and makes the image present: layers not yet in the content store
// are downloaded (concurrently, verified), and the image is unpacked unless an identical one (same
// config digest) is already there. Concurrent pulls of one reference and platform share the work.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	norm, r, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	plat := s.platform
	if opts.Platform != "" {
		p, err := v1.ParsePlatform(opts.Platform)
		if err != nil {
			return nil, fmt.Errorf("invalid platform %q: %w", opts.Platform, err)
		}
		plat = *p
	}
	img, err := s.share(ctx, norm+"|"+plat.String(), opts.Progress,
		func(ctx context.Context, report func(Progress)) (*Image, error) {
			return s.pull(ctx, norm, r, plat, opts.Auth, report)
		})
	if err != nil {
		return nil, fmt.Errorf("pulling %q: %w", norm, err)
	}
	return img, nil
}

// remoteOptions are the registry options of pulls and pushes: auth if given, else the keychain.
func (s *Store) remoteOptions(ctx context.Context, auth authn.Authenticator) []remote.Option {
	ro := []remote.Option{remote.WithContext(ctx), remote.WithUserAgent("skiff")}
	if auth != nil {
		return append(ro, remote.WithAuth(auth))
	}
	return append(ro, remote.WithAuthFromKeychain(s.keychain))
}

func (s *Store) pull(ctx context.Context, norm string, r name.Reference, plat v1.Platform,
	auth authn.Authenticator, report func(Progress)) (*Image, error) {
	s.cleanStale(false)
	desc, err := remote.Get(r, s.remoteOptions(ctx, auth)...)
	if err != nil {
		return nil, registryError(err)
	}
	img, platform, err := choosePlatform(desc, plat, s.knownPlatform, s.checkSizes)
	if err != nil {
		return nil, err
	}
	names := []string{norm}
	if !strings.Contains(norm, "@") {
		names = append(names, repoOf(norm)+"@"+desc.Digest.String())
	}
	s.log.Debug("pulling", zap.String("ref", norm), zap.String("platform", platform))
	return s.install(ctx, img, platform, names, func(p Progress) { p.Ref = norm; report(p) })
}

// registryError maps "no such manifest or repository" to ErrNotFound.
func registryError(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("%w: %v", ErrNotFound, err)
			}
		}
	}
	return err
}

// knownPlatform returns the platform of a present image by config digest, so a pull by manifest
// digest of a present image needs no config download.
func (s *Store) knownPlatform(id string) (string, bool) {
	r, err := s.readRecord(id)
	if err != nil {
		return "", false
	}
	return r.Platform, true
}

// choosePlatform picks the image for plat from an index, or checks a single image's platform.
func choosePlatform(desc *remote.Descriptor, plat v1.Platform,
	known func(configDigest string) (string, bool), check func(*v1.Manifest) error) (v1.Image, string, error) {
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, "", err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, "", err
		}
		d, avail, ok := matchManifest(im, plat)
		if !ok {
			return nil, "", platformError(plat, avail)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, "", err
		}
		return img, platformString(*d.Platform), nil
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, "", err
		}
		mf, err := img.Manifest()
		if err != nil {
			return nil, "", err
		}
		var have v1.Platform
		if p, ok := known(mf.Config.Digest.String()); ok {
			if pp, err := v1.ParsePlatform(p); err == nil {
				have = *pp
			}
		} else {
			if err := check(mf); err != nil {
				return nil, "", err
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return nil, "", err
			}
			have = v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		}
		if have.OS == "" && have.Architecture == "" {
			return img, platformString(plat), nil
		}
		if !platformMatch(plat, have) {
			return nil, "", platformError(plat, []string{platformString(have)})
		}
		return img, platformString(have), nil
	}
	return nil, "", fmt.Errorf("%w: manifest media type %q is not an image", ErrUnsupported, desc.MediaType)
}

func matchManifest(im *v1.IndexManifest, plat v1.Platform) (v1.Descriptor, []string, bool) {
	var avail []string
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" || !isImageType(d.MediaType) {
			continue // attestations and other non-image entries
		}
		if platformMatch(plat, *d.Platform) {
			return d, nil, true
		}
		avail = append(avail, platformString(*d.Platform))
	}
	sort.Strings(avail)
	return v1.Descriptor{}, avail, false
}

func isImageType(mt types.MediaType) bool {
	return mt == "" || mt.IsImage()
}

func platformError(want v1.Platform, avail []string) error {
	if len(avail) == 0 {
		return fmt.Errorf("%w: %s requested, and the image lists no platforms", ErrPlatformNotFound, platformString(want))
	}
	return fmt.Errorf("%w: %s requested, available: %s", ErrPlatformNotFound, platformString(want), strings.Join(avail, ", "))
}

// platformMatch reports whether have serves want: same OS and architecture, and the same variant when
// want names one (arm64 without a variant is v8).
func platformMatch(want, have v1.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	wv, hv := want.Variant, have.Variant
	if want.Architecture == "arm64" {
		if wv == "" {
			wv = "v8"
		}
		if hv == "" {
			hv = "v8"
		}
	}
	return wv == hv
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func looksLikeID(s string) bool {
	h := strings.TrimPrefix(s, "sha256:")
	return strings.HasPrefix(s, "sha256:") || len(h) == 64 && isHex(h)
}
