package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"

	"github.com/skiff-containers/skiff/backend/images"
)

// decodeRegistryAuth reads the X-Registry-Auth header: base64url JSON of a registry.AuthConfig.
// An absent or empty one ("{}") is nil, meaning the store's keychain.
func decodeRegistryAuth(h string) (authn.Authenticator, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil, nil
	}
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "=")); err != nil {
			return nil, badRequest("X-Registry-Auth header is not base64url: %v", err)
		}
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		return nil, badRequest("X-Registry-Auth header is not an auth config: %v", err)
	}
	return authenticator(ac), nil
}

func authenticator(ac registry.AuthConfig) authn.Authenticator {
	cfg := authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
	if cfg == (authn.AuthConfig{}) {
		return nil
	}
	return authn.FromConfig(cfg)
}

// pushImage serves POST /images/{name}/push?tag= (docker push).
func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, repo string) {
	auth, err := decodeRegistryAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		fail(w, err)
		return
	}
	ref := repo
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	norm, err := images.NormalizeRef(ref)
	if err != nil {
		fail(w, err)
		return
	}
	jl := newJSONLines(w)
	jl.send(jsonstream.Message{Status: "The push refers to repository [" + familiarRepo(norm) + "]"})
	if _, err := s.eng.Images().Get(r.Context(), norm); err != nil {
		if errors.Is(err, images.ErrNotFound) {
			err = &statusError{code: http.StatusNotFound, msg: "An image does not exist locally with the tag: " + familiarRepo(norm)}
		}
		jl.fail(err)
		return
	}
	tagPart := norm[strings.LastIndexByte(norm, ':')+1:]
	var last time.Time
	res, err := s.eng.Images().Push(r.Context(), norm, images.PushOptions{Auth: auth, Progress: func(p images.Progress) {
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || p.Done == p.Total {
			last = now
			jl.send(jsonstream.Message{Status: "Pushing", ID: tagPart,
				Progress: &jsonstream.Progress{Current: p.Done, Total: p.Total}})
		}
	}})
	if err != nil {
		jl.fail(err)
		return
	}
	jl.send(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", tagPart, res.Digest, res.Size)})
}

// login serves POST /auth (docker login): the credentials are checked against the registry's /v2/.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var ac registry.AuthConfig
	if err := json.NewDecoder(r.Body).Decode(&ac); err != nil {
		fail(w, badRequest("auth config: %v", err))
		return
	}
	addr := ac.ServerAddress
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
	}
	addr, _, _ = strings.Cut(addr, "/")
	if addr == "" {
		addr = name.DefaultRegistry
	}
	reg, err := name.NewRegistry(addr)
	if err != nil {
		fail(w, badRequest("registry address %q: %v", ac.ServerAddress, err))
		return
	}
	auth := authenticator(ac)
	if auth == nil {
		auth = authn.Anonymous
	}
	msg := func(err error) string { return fmt.Sprintf("login attempt to %s failed: %v", reg.Name(), err) }
	tr, err := transport.NewWithContext(r.Context(), reg, auth, http.DefaultTransport, nil)
	if err != nil {
		writeError(w, http.StatusUnauthorized, msg(err))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		fail(w, err)
		return
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		writeError(w, http.StatusBadGateway, msg(err))
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		writeError(w, http.StatusUnauthorized, msg(fmt.Errorf("status %s", resp.Status)))
		return
	}
	writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded"})
}
