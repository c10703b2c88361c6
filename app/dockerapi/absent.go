package dockerapi

import (
	"fmt"
	"net/http"
)

// Features Skiff does not have, answered as a Docker engine without any would.

// Skiff has no plugins: the list is empty and any name is 404. Testcontainers looks one up by the
// volume name it removes at Terminate.

func (s *Server) listPlugins(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []struct{}{})
}

func (s *Server) noSuchPlugin(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("plugin %q not found", r.PathValue("name")))
}
