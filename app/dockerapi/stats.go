package dockerapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-containers/skiff/backend/engine"
)

// cpuCounter turns the engine's samples (CPU use as a share of the VM, measured in the guest) into
// the cumulative counters Docker reports, so that a client's Docker formula
// (Δtotal_usage / Δsystem_cpu_usage × online_cpus × 100) gives the VM's share × its CPUs, as
// Docker gives 100% per busy CPU. The counters start at zero for each request.
type cpuCounter struct {
	total, system uint64
	last          time.Time
}

func (cc *cpuCounter) add(st *engine.Stats, elapsed time.Duration) container.CPUStats {
	cpus := uint64(max(st.CPUs, 1))
	ns := uint64(elapsed.Nanoseconds())
	cc.system += ns * cpus
	cc.total += uint64(st.CPUPercent / 100 * float64(ns) * float64(cpus))
	return container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: cc.total}, SystemUsage: cc.system,
		OnlineCPUs: uint32(cpus)}
}

func statsResponse(c *engine.Container, st *engine.Stats, cpu, pre container.CPUStats, preRead time.Time) container.StatsResponse {
	return container.StatsResponse{
		ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: st.Time, PreRead: preRead,
		CPUStats: cpu, PreCPUStats: pre,
		// usage and limit are the guest's; stats.host_memory is what its VM costs the host.
		MemoryStats: container.MemoryStats{Usage: st.MemoryUsage, Limit: st.MemoryLimit,
			Stats: map[string]uint64{"host_memory": st.HostMemory}},
		Networks:  map[string]container.NetworkStats{"eth0": {RxBytes: st.NetRx, TxBytes: st.NetTx}},
		PidsStats: container.PidsStats{Current: st.PIDs},
		BlkioStats: container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
			{Op: "read", Value: st.BlockRead}, {Op: "write", Value: st.BlockWrite}}},
		NumProcs: uint32(st.PIDs),
	}
}

// containerStats serves GET /containers/{id}/stats: a sample a second with stream (the default),
// else one, whose precpu_stats cover the second before it so that clients compute the CPU share.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	stream := r.URL.Query().Get("stream") == "" || boolParam(r, "stream")
	if !isUp(c.State) {
		// Docker answers a stopped container with one empty sample.
		writeJSON(w, http.StatusOK, container.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux"})
		return
	}
	var cc cpuCounter
	if !stream {
		st, err := s.eng.Stats(r.Context(), c.ID)
		if err != nil {
			containerErr(w, id, err)
			return
		}
		pre := cc.add(&engine.Stats{CPUs: st.CPUs}, 0)
		cur := cc.add(st, time.Second)
		writeJSON(w, http.StatusOK, statsResponse(c, st, cur, pre, st.Time.Add(-time.Second)))
		return
	}
	samples, err := s.eng.StatsStream(r.Context(), c.ID, time.Second)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var pre container.CPUStats
	var preRead time.Time
	for st := range samples {
		elapsed := time.Second
		if !cc.last.IsZero() {
			elapsed = st.Time.Sub(cc.last)
		}
		cc.last = st.Time
		cur := cc.add(&st, elapsed)
		if err := enc.Encode(statsResponse(c, &st, cur, pre, preRead)); err != nil {
			s.log.Debug(fmt.Sprintf("stats of %s: the client went away", c.Name))
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		pre, preRead = cur, st.Time
	}
}
