package docker_test

import (
	"strings"
	"testing"
	"time"
)

// TestEventsSinceReplay: `docker events --since` shows what happened before the call (the engine
// keeps recent events), filters apply to the replay, and `--until` ends the stream by itself.
func TestEventsSinceReplay(t *testing.T) {
	need(t)
	loadBusybox(t)
	t0 := time.Now().Add(-time.Second)
	dockerOK(t, "run", "--rm", "--name", "evreplay", "busybox", "true")
	until := time.Now().Add(2 * time.Second)
	since := t0.Format(time.RFC3339Nano)
	start := time.Now()
	out := dockerOK(t, "events", "--since", since, "--until", until.Format(time.RFC3339Nano), "--filter", "container=evreplay")
	if time.Since(start) > 30*time.Second {
		t.Errorf("docker events --until took %s to end", time.Since(start))
	}
	for _, want := range []string{"container create", "container start", "container die", "container destroy"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker events --since: no %q in\n%s", want, out)
		}
	}
	// An until already past: the replay only, at once; an event filter applies to it.
	out = dockerOK(t, "events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "container=evreplay", "--filter", "event=die")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "container die") || !strings.Contains(lines[0], "name=evreplay") {
		t.Errorf("docker events --filter event=die over the past: %q, want the one die", out)
	}
}
