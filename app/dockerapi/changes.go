package dockerapi

import (
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-containers/skiff/backend/engine"
)

// changeKinds map the engine's change kinds onto Docker's.
var changeKinds = map[string]container.ChangeType{
	engine.ChangeModified: container.ChangeModify,
	engine.ChangeAdded:    container.ChangeAdd,
	engine.ChangeDeleted:  container.ChangeDelete,
}

// containerChanges serves GET /containers/{id}/changes (`docker diff`): the container's writable
// layer against its image (engine.Changes), running or stopped.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	chs, err := s.eng.Changes(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	out := make([]container.FilesystemChange, 0, len(chs))
	for _, ch := range chs {
		out = append(out, container.FilesystemChange{Path: ch.Path, Kind: changeKinds[ch.Kind]})
	}
	writeJSON(w, http.StatusOK, out)
}
