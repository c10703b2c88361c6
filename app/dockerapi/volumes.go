package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/volume"

	"github.com/skiff-containers/skiff/backend/engine"
)

// VolumeEngine is what the volume endpoints need of the engine (part of Engine).
type VolumeEngine interface {
	CreateVolume(ctx context.Context, opts engine.VolumeOptions) (*engine.Volume, error)
	Volumes(ctx context.Context) ([]engine.Volume, error)
	InspectVolume(ctx context.Context, name string) (*engine.Volume, error)
	RemoveVolume(ctx context.Context, name string, force bool) error
	PruneVolumes(ctx context.Context, match func(engine.Volume) bool) ([]string, int64, error)
	VolumeSize(ctx context.Context, name string) (int64, error)
}

func (s *Server) volumeRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /volumes", s.listVolumes)
	m.HandleFunc("POST /volumes/create", s.createVolume)
	m.HandleFunc("POST /volumes/prune", s.pruneVolumes)
	m.HandleFunc("GET /volumes/{name}", s.inspectVolume)
	m.HandleFunc("DELETE /volumes/{name}", s.removeVolume)
}

func dockerVolume(v *engine.Volume) volume.Volume {
	out := volume.Volume{Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, Labels: v.Labels,
		Options: v.Options, Scope: "local", CreatedAt: v.CreatedAt.Format(time.RFC3339)}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	// What Mountpoint is: a disk volume's ext4 image, attached to the VM of the container that mounts
	// it; a shared folder's directory, shared into each VM.
	if v.Shared {
		out.Status = map[string]any{"Storage": "shared folder: a directory shared into each container's VM; several running containers at once, owners not kept"}
	} else {
		out.Status = map[string]any{"Storage": "disk: Mountpoint is an ext4 image attached to the container's VM; owners kept, one running container at a time (or read-only by several)"}
	}
	return out
}

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
	vols, err := s.eng.Volumes(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	out := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for i := range vols {
		if matchVolume(f, &vols[i]) {
			out.Volumes = append(out.Volumes, dockerVolume(&vols[i]))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// matchVolume applies the list filters: name (a substring, as Docker's), driver, label, dangling
// (no container mounts it).
func matchVolume(f filters, v *engine.Volume) bool {
	return f.any("name", func(n string) bool { return strings.Contains(v.Name, n) }) &&
		f.any("driver", func(d string) bool { return d == "local" }) &&
		f.any("dangling", func(d string) bool { return (d == "true" || d == "1") == (len(v.UsedBy) == 0) }) &&
		f.labels(v.Labels)
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	var req volume.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, badRequest("decoding the volume create request: %v", err))
		return
	}
	if req.ClusterVolumeSpec != nil {
		fail(w, badRequest("cluster volumes are not supported by Skiff"))
		return
	}
	v, err := s.eng.CreateVolume(r.Context(), engine.VolumeOptions{Name: req.Name, Labels: req.Labels, Driver: req.Driver, Options: req.DriverOpts})
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, dockerVolume(v))
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, err := s.eng.InspectVolume(r.Context(), name)
	if err != nil {
		volumeErr(w, "get", name, err)
		return
	}
	writeJSON(w, http.StatusOK, dockerVolume(v))
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.eng.RemoveVolume(r.Context(), name, boolParam(r, "force")); err != nil {
		volumeErr(w, "remove", name, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// volumeErr answers with Docker's wording: "get NAME: no such volume", "remove NAME: volume is in
// use - [IDs]".
func volumeErr(w http.ResponseWriter, op, name string, err error) {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s: no such volume", op, name))
	case errors.Is(err, engine.ErrConflict):
		writeError(w, http.StatusConflict, fmt.Sprintf("%s %s: volume is in use (%v)", op, name, err))
	default:
		fail(w, err)
	}
}

// pruneVolumes removes unused volumes: by default (API 1.42 on) only anonymous ones, all with the
// filter all=true; label filters narrow it.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("label", "label!", "all"); err != nil {
		fail(w, err)
		return
	}
	all := len(f["all"]) > 0 && (f["all"][0] == "true" || f["all"][0] == "1")
	removed, freed, err := s.eng.PruneVolumes(r.Context(), func(v engine.Volume) bool {
		return (all || v.Anonymous) && f.labels(v.Labels) && !f.anyLabel("label!", v.Labels)
	})
	if err != nil {
		fail(w, err)
		return
	}
	if removed == nil {
		removed = []string{}
	}
	writeJSON(w, http.StatusOK, volume.PruneReport{VolumesDeleted: removed, SpaceReclaimed: uint64(freed)})
}

// anyLabel is true when one of the name filter's labels ("key" or "key=value") matches.
func (f filters) anyLabel(name string, labels map[string]string) bool {
	for _, l := range f[name] {
		k, v, hasValue := strings.Cut(l, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == v) {
			return true
		}
	}
	return false
}
