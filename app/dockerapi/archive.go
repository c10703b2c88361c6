package dockerapi

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/engine"
)

// statHeader is the header `docker cp` reads a path's stat from (base64 of container.PathStat).
const statHeader = "X-Docker-Container-Path-Stat"

// archiveTarget reads the container and path of an /archive request and checks the container
// exists, answering the error itself when ok is false.
func (s *Server) archiveTarget(w http.ResponseWriter, r *http.Request) (id, p string, ok bool) {
	id, p = r.PathValue("id"), r.URL.Query().Get("path")
	if p == "" {
		writeError(w, http.StatusBadRequest, "the path query parameter is required")
		return "", "", false
	}
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return "", "", false
	}
	return c.ID, p, true
}

// pathErr answers an error about path p in container ref with Docker's wording for a missing path.
func pathErr(w http.ResponseWriter, ref, p string, err error) {
	if errors.Is(err, engine.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Could not find the file %s in container %s", p, ref))
		return
	}
	fail(w, err)
}

func setStatHeader(w http.ResponseWriter, st engine.PathStat) error {
	b, err := json.Marshal(container.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget})
	if err != nil {
		return err
	}
	w.Header().Set(statHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

// HEAD /containers/{id}/archive: the stat of a path.
func (s *Server) statArchive(w http.ResponseWriter, r *http.Request) {
	id, p, ok := s.archiveTarget(w, r)
	if !ok {
		return
	}
	st, err := s.eng.StatPath(r.Context(), id, p)
	if err != nil {
		pathErr(w, r.PathValue("id"), p, err)
		return
	}
	if err := setStatHeader(w, st); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// GET /containers/{id}/archive: a tar of a path.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) {
	id, p, ok := s.archiveTarget(w, r)
	if !ok {
		return
	}
	rc, st, err := s.eng.CopyFrom(r.Context(), id, p)
	if err != nil {
		pathErr(w, r.PathValue("id"), p, err)
		return
	}
	defer rc.Close()
	if err := setStatHeader(w, st); err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		// The status is sent: the client sees a truncated tar.
		s.log.Warn("docker cp from a container", zap.String("container", id), zap.String("path", p), zap.Error(err))
	}
}

// PUT /containers/{id}/archive: unpack a tar (plain, gzip or bzip2) into a directory.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) {
	id, p, ok := s.archiveTarget(w, r)
	if !ok {
		return
	}
	body, err := decompress(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	opts := engine.CopyToOptions{NoOverwriteDirNonDir: boolParam(r, "noOverwriteDirNonDir")}
	if err := s.eng.CopyTo(r.Context(), id, p, body, opts); err != nil {
		pathErr(w, r.PathValue("id"), p, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// decompress sniffs the compression of an uploaded archive.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading the gzip archive: %v", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, errors.New("xz-compressed archives are not supported: send a plain, gzip or bzip2 tar")
	}
	return br, nil
}
