package images

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushOptions tune Push. Auth nil means the store's keychain; Progress may be nil.
type PushOptions struct {
	Auth     authn.Authenticator
	Progress func(Progress) // Done and Total are bytes of the whole image
}

// PushResult is what the registry now holds under the reference.
type PushResult struct {
	Ref    string // normalised reference pushed
	Digest string // manifest digest
	Size   int64  // manifest size in bytes
}

// Push uploads the stored image ref names to its registry (blobs the registry has are skipped). A
// reference the store lacks is ErrNotFound. Plain HTTP is used for the hosts pull uses it for
// (localhost and loopback addresses), as both parse references the same way.
func (s *Store) Push(ctx context.Context, ref string, opts PushOptions) (*PushResult, error) {
	norm, r, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	if strings.Contains(norm, "@") {
		return nil, fmt.Errorf("%w %q: push needs a tag, not a digest", ErrInvalidReference, ref)
	}
	id, err := s.resolve(norm)
	if err != nil {
		return nil, fmt.Errorf("an image does not exist locally with the tag %q: %w", norm, ErrNotFound)
	}
	rec, err := s.readRecord(id)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", norm, ErrNotFound)
	}
	img, err := s.storedImage(rec)
	if err != nil {
		return nil, fmt.Errorf("reading image %q: %w", norm, err)
	}
	ro := s.remoteOptions(ctx, opts.Auth)
	done := make(chan struct{})
	if opts.Progress != nil {
		updates := make(chan v1.Update, 16)
		ro = append(ro, remote.WithProgress(updates))
		go func() {
			defer close(done)
			for u := range updates { // closed by remote.Write
				if u.Error == nil {
					opts.Progress(Progress{Ref: norm, Done: u.Complete, Total: u.Total, Status: "pushing"})
				}
			}
		}()
	} else {
		close(done)
	}
	werr := remote.Write(r, img, ro...)
	<-done
	if werr != nil {
		return nil, fmt.Errorf("pushing %q: %w", norm, registryError(werr))
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	return &PushResult{Ref: norm, Digest: rec.Digest, Size: int64(len(raw))}, nil
}
