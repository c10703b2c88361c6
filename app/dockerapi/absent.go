package dockerapi

import (
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/volume"
)

// Features Skiff does not have, answered as a Docker engine without any would.
//
// Skiff has no named volumes (create refuses them; bind mounts are the way to share files), so the
// volume endpoints answer as a Docker engine with none would: an empty list, and 404 "no such
// volume" for any name. Testcontainers asks for a volume named after each container when it
// terminates it. Creating one stays 501.

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("name", "driver", "label", "dangling"); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}})
}

// noSuchVolume answers GET and DELETE /volumes/{name}.
func (s *Server) noSuchVolume(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "get "+r.PathValue("name")+": no such volume")
}

// Skiff has no plugins: the list is empty and any name is 404. Testcontainers looks one up by the
// volume name it removes at Terminate.

func (s *Server) listPlugins(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []struct{}{})
}

func (s *Server) noSuchPlugin(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("plugin %q not found", r.PathValue("name")))
}
