package dockerapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-containers/skiff/backend/engine"
)

// topTitles are `ps -ef`'s, Docker's default columns.
var topTitles = []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}

// containerTop serves GET /containers/{id}/top: the processes of the container's PID namespace,
// read in its guest, in `ps -ef`'s columns (pids as the container sees them). ps_args other than
// -ef are refused: the guest has no ps to pass them to.
func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if a := r.URL.Query().Get("ps_args"); a != "" && a != "-ef" {
		fail(w, badRequest("ps_args %q: Skiff lists processes in ps -ef's columns only", a))
		return
	}
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	if c.State != engine.StateRunning {
		writeError(w, http.StatusConflict, fmt.Sprintf("container %s is not running", c.ID))
		return
	}
	procs, err := s.eng.Top(r.Context(), c.ID)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	writeJSON(w, http.StatusOK, topResponse(procs, time.Now()))
}

func topResponse(procs []engine.TopProc, now time.Time) container.TopResponse {
	resp := container.TopResponse{Titles: topTitles, Processes: [][]string{}}
	for _, p := range procs {
		user := p.User
		if user == "" {
			user = strconv.Itoa(p.UID)
		}
		start := p.Start.Local()
		stime := start.Format("15:04")
		if now.Sub(start) > 24*time.Hour {
			stime = start.Format("Jan02")
		}
		tty := p.TTY
		if tty == "" {
			tty = "?"
		}
		secs := int64(p.CPU / time.Second)
		cpu := fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
		resp.Processes = append(resp.Processes, []string{user, strconv.Itoa(p.PID), strconv.Itoa(p.PPID), "0",
			stime, tty, cpu, p.Command})
	}
	return resp
}
