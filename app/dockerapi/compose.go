package dockerapi

import (
	"context"
	"net/http"
	"strings"
)

// What Docker Compose needs beyond the endpoints the docker CLI uses.

// ComposeEngine is what these endpoints need of the engine (part of Engine).
type ComposeEngine interface {
	Rename(ctx context.Context, id, name string) error
}

func (s *Server) composeRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /containers/{id}/rename", s.renameContainer)
}

// renameContainer serves POST /containers/{id}/rename?name=NEW.
func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if name == "" {
		fail(w, badRequest("rename: no new name given (?name=)"))
		return
	}
	if err := s.eng.Rename(r.Context(), id, name); err != nil {
		containerErr(w, id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
