package dockerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-containers/skiff/backend/images"
)

// familiar is the short form Docker shows: "docker.io/library/busybox:latest" → "busybox:latest".
func familiar(ref string) string {
	if r, ok := strings.CutPrefix(ref, "docker.io/library/"); ok && !strings.Contains(r, "/") {
		return r
	}
	if r, ok := strings.CutPrefix(ref, "docker.io/"); ok {
		return r
	}
	return ref
}

func familiarAll(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, familiar(r))
	}
	return out
}

func imageSummary(im *images.Image) image.Summary {
	labels := im.Config.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return image.Summary{
		ID: im.ID, RepoTags: familiarAll(im.RepoTags), RepoDigests: familiarAll(im.RepoDigests),
		Created: im.Created.Unix(), Size: im.Size, Labels: labels, Containers: -1, SharedSize: -1,
	}
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("reference", "label", "dangling"); err != nil {
		fail(w, err)
		return
	}
	ims, err := s.eng.Images().List(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	out := []image.Summary{}
	for i := range ims {
		im := &ims[i]
		if !f.labels(im.Config.Labels) ||
			!f.any("dangling", func(v string) bool { return (v == "true" || v == "1") == (len(im.RepoTags) == 0) }) {
			continue
		}
		if refs := f["reference"]; len(refs) > 0 {
			// As Docker does, the image is listed with the names that match only.
			var tags []string
			for _, t := range im.RepoTags {
				if f.any("reference", func(v string) bool { return matchReference(v, []string{t}) }) {
					tags = append(tags, t)
				}
			}
			if len(tags) == 0 {
				continue
			}
			im.RepoTags = tags
		}
		out = append(out, imageSummary(im))
	}
	writeJSON(w, http.StatusOK, out)
}

// matchReference is the reference filter: the familiar name or name:tag, with shell patterns.
func matchReference(pattern string, tags []string) bool {
	for _, t := range tags {
		name := familiar(t)
		repo := name
		if c := strings.LastIndexByte(name, ':'); c > strings.LastIndexByte(name, '/') {
			repo = name[:c]
		}
		for _, cand := range []string{name, repo} {
			if ok, _ := path.Match(pattern, cand); ok {
				return true
			}
		}
	}
	return false
}

// getImage serves GET /images/{name}/json (inspect); other GETs under /images/ are not implemented.
func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), "/json")
	if !ok {
		s.notImplemented(w, r)
		return
	}
	im, err := s.eng.Images().Get(r.Context(), name)
	if err != nil {
		imageErr(w, name, err)
		return
	}
	writeJSON(w, http.StatusOK, imageInspect(im))
}

func imageInspect(im *images.Image) image.InspectResponse {
	c := im.Config
	exposed := map[string]struct{}{}
	for _, p := range c.ExposedPorts {
		exposed[p] = struct{}{}
	}
	volumes := map[string]struct{}{}
	for _, v := range c.Volumes {
		volumes[v] = struct{}{}
	}
	parts := strings.Split(im.Platform, "/")
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return image.InspectResponse{
		ID: im.ID, RepoTags: familiarAll(im.RepoTags), RepoDigests: familiarAll(im.RepoDigests),
		Created: im.Created.UTC().Format(time.RFC3339Nano),
		Config: &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
			User: c.User, ExposedPorts: exposed, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, Volumes: volumes,
			WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal,
		}},
		Os: parts[0], Architecture: parts[1], Variant: parts[2], Size: im.Size,
		RootFS: image.RootFS{Type: "layers"},
	}
}

// postImage serves POST /images/{name}/tag and /images/{name}/push.
func (s *Server) postImage(w http.ResponseWriter, r *http.Request) {
	if repo, ok := strings.CutSuffix(r.PathValue("name"), "/push"); ok {
		s.pushImage(w, r, repo)
		return
	}
	name, ok := strings.CutSuffix(r.PathValue("name"), "/tag")
	if !ok {
		s.notImplemented(w, r)
		return
	}
	repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
	if repo == "" {
		writeError(w, http.StatusBadRequest, "repository name (repo) is required")
		return
	}
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	if err := s.eng.Images().Tag(r.Context(), name, target); err != nil {
		imageErr(w, name, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st := s.eng.Images()
	im, err := st.Get(r.Context(), name)
	if err != nil {
		imageErr(w, name, err)
		return
	}
	if err := st.Remove(r.Context(), name, boolParam(r, "force")); err != nil {
		if errors.Is(err, images.ErrInUse) {
			writeError(w, http.StatusConflict, fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - image %s is being used by a container", name, shortImageID(im.ID)))
			return
		}
		imageErr(w, name, err)
		return
	}
	out := []image.DeleteResponse{}
	_, gone := st.Get(r.Context(), im.ID)
	if gone == nil { // untagged only
		if norm, err := images.NormalizeRef(name); err == nil {
			out = append(out, image.DeleteResponse{Untagged: familiar(norm)})
		}
	} else {
		for _, t := range im.RepoTags {
			out = append(out, image.DeleteResponse{Untagged: familiar(t)})
		}
		for _, d := range im.RepoDigests {
			out = append(out, image.DeleteResponse{Untagged: familiar(d)})
		}
		out = append(out, image.DeleteResponse{Deleted: im.ID})
	}
	writeJSON(w, http.StatusOK, out)
}

func shortImageID(id string) string {
	h := strings.TrimPrefix(id, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// jsonLines writes Docker's JSON progress messages, one per line, flushed as they go.
type jsonLines struct {
	w     http.ResponseWriter
	enc   *json.Encoder
	flush func()
}

func newJSONLines(w http.ResponseWriter) *jsonLines {
	// The request body (a load's archive) is read while the progress goes out.
	http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	jl := &jsonLines{w: w, enc: json.NewEncoder(w), flush: func() {}}
	if f, ok := w.(http.Flusher); ok {
		jl.flush = f.Flush
	}
	jl.flush()
	return jl
}

func (jl *jsonLines) send(m jsonstream.Message) {
	jl.enc.Encode(m)
	jl.flush()
}

// fail ends the stream with err, in both the errorDetail object and the older "error" string that
// Docker sends.
func (jl *jsonLines) fail(err error) {
	jl.enc.Encode(struct {
		Detail  *jsonstream.Error `json:"errorDetail"`
		Message string            `json:"error"`
	}{&jsonstream.Error{Message: err.Error()}, err.Error()})
	jl.flush()
}

// progressMessage turns the store's progress into Docker's per-layer line.
func progressMessage(p images.Progress, verb string) jsonstream.Message {
	m := jsonstream.Message{ID: shortImageID(p.Layer)}
	switch p.Status {
	case "downloading", "extracting":
		m.Status = verb
		if p.Status == "extracting" {
			m.Status = "Extracting"
		}
		m.Progress = &jsonstream.Progress{Current: p.Done, Total: p.Total}
	case "waiting":
		m.Status = "Waiting"
	case "verifying":
		m.Status = "Verifying Checksum"
	case "done":
		m.Status = verb + " complete"
	case "exists":
		m.Status = "Already exists"
	case images.StatusBuildingDisk:
		m.Status = "Building disk"
		m.Progress = &jsonstream.Progress{Current: p.Done, Total: p.Total}
	case images.StatusDiskReady:
		m.Status = "Disk ready"
	default:
		m.Status = p.Status
	}
	return m
}

func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) {
	quiet := boolParam(r, "quiet")
	jl := newJSONLines(w)
	var progress func(images.Progress)
	if !quiet {
		progress = func(p images.Progress) {
			if p.Layer != "" {
				jl.send(progressMessage(p, "Loading layer"))
			}
		}
	}
	loaded, err := s.eng.Images().Load(r.Context(), r.Body, progress)
	if err != nil {
		jl.fail(fmt.Errorf("loading images: %w", err))
		return
	}
	for _, im := range loaded {
		if len(im.RepoTags) == 0 {
			jl.send(jsonstream.Message{Stream: "Loaded image ID: " + im.ID + "\n"})
		}
		for _, t := range im.RepoTags {
			jl.send(jsonstream.Message{Stream: "Loaded image: " + familiar(t) + "\n"})
		}
	}
}

// pullImage serves POST /images/create?fromImage=&tag= (docker pull; docker run of an absent image).
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from := q.Get("fromImage")
	if from == "" {
		writeError(w, http.StatusNotImplemented, "Skiff does not implement image import (fromSrc) yet")
		return
	}
	ref := from
	if tag := q.Get("tag"); tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	norm, err := images.NormalizeRef(ref)
	if err != nil {
		fail(w, err)
		return
	}
	auth, err := decodeRegistryAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		fail(w, err)
		return
	}
	jl := newJSONLines(w)
	tagPart := norm[strings.LastIndexAny(norm, ":@")+1:]
	jl.send(jsonstream.Message{Status: "Pulling from " + familiarRepo(norm), ID: tagPart})
	im, err := s.eng.Pull(r.Context(), ref, images.PullOptions{Platform: q.Get("platform"), Auth: auth, Progress: func(p images.Progress) {
		if p.Layer != "" {
			jl.send(progressMessage(p, "Downloading"))
		}
	}})
	if err != nil {
		jl.fail(err)
		return
	}
	if im.Digest != "" {
		jl.send(jsonstream.Message{Status: "Digest: " + im.Digest})
	}
	jl.send(jsonstream.Message{Status: "Status: Downloaded newer image for " + familiar(norm)})
}

// familiarRepo is the repository of a normalised reference in its familiar form.
func familiarRepo(norm string) string {
	name := norm
	if at := strings.IndexByte(name, '@'); at >= 0 {
		name = name[:at]
	} else if c := strings.LastIndexByte(name, ':'); c > strings.LastIndexByte(name, '/') {
		name = name[:c]
	}
	return familiar(name)
}
