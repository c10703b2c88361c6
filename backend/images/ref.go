package images

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// NormalizeRef returns the reference in the full form Docker uses: "alpine" →
// "docker.io/library/alpine:latest", "user/app:1" → "docker.io/user/app:1",
// "localhost:5000/app" → "localhost:5000/app:latest". A reference with a digest keeps only the
// digest ("alpine:3@sha256:…" → "docker.io/library/alpine@sha256:…").
func NormalizeRef(s string) (string, error) {
	norm, _, err := parseRef(s)
	return norm, err
}

// parseRef normalises s and returns the go-containerregistry reference for it.
func parseRef(s string) (string, name.Reference, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return "", nil, fmt.Errorf("%w: empty", ErrInvalidReference)
	}
	if at := strings.IndexByte(in, '@'); at >= 0 {
		// "repo:tag@digest": the digest wins, as in Docker.
		base := in[:at]
		if c := strings.LastIndexByte(base, ':'); c > strings.LastIndexByte(base, '/') {
			base = base[:c]
		}
		in = base + in[at:]
	}
	ref, err := name.ParseReference(in, name.StrictValidation)
	if err != nil {
		// Strict validation refuses the implicit registry and tag; add them the way Docker would.
		ref, err = name.ParseReference(in)
	}
	if err != nil {
		return "", nil, fmt.Errorf("%w %q: %v", ErrInvalidReference, s, err)
	}
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + ref.Context().RepositoryStr()
	var norm string
	switch r := ref.(type) {
	case name.Digest:
		norm = repo + "@" + r.DigestStr()
	case name.Tag:
		norm = repo + ":" + r.TagStr()
	default:
		return "", nil, fmt.Errorf("%w %q", ErrInvalidReference, s)
	}
	return norm, ref, nil
}

// repoOf returns the repository part of a normalised reference ("docker.io/library/alpine").
func repoOf(norm string) string {
	if at := strings.IndexByte(norm, '@'); at >= 0 {
		return norm[:at]
	}
	if c := strings.LastIndexByte(norm, ':'); c > strings.LastIndexByte(norm, '/') {
		return norm[:c]
	}
	return norm
}
