package docker_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersionAndInfo(t *testing.T) {
	need(t)
	out := dockerOK(t, "version")
	for _, want := range []string{"Server: Skiff", "API version:", "1.50", "OS/Arch:"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker version lacks %q:\n%s", want, out)
		}
	}
	var info struct {
		OSType, OperatingSystem, Architecture, ServerVersion, Name string
		NCPU                                                       int
		MemTotal                                                   int64
		Containers, ContainersRunning, ContainersStopped, Images   int
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "info", "--format", "{{json .}}")), &info); err != nil {
		t.Fatal(err)
	}
	if info.OSType != "linux" || info.OperatingSystem != "Skiff" || info.NCPU != runtime.NumCPU() ||
		info.MemTotal <= 0 || info.ServerVersion == "" || info.Name == "" || info.Architecture == "" {
		t.Errorf("docker info: %+v", info)
	}
	// The counts are the engine's: a container created through docker shows up in them.
	loadBusybox(t)
	id := strings.TrimSpace(dockerOK(t, "create", "busybox", "true"))
	defer docker(t, "rm", "-f", id)
	var after struct{ Containers, ContainersStopped, Images int }
	if err := json.Unmarshal([]byte(dockerOK(t, "info", "--format", "{{json .}}")), &after); err != nil {
		t.Fatal(err)
	}
	if after.Containers < 1 || after.ContainersStopped < 1 || after.Images < 1 {
		t.Errorf("docker info after a create: %+v", after)
	}
	out = dockerOK(t, "info")
	if !strings.Contains(out, "Operating System: Skiff") {
		t.Errorf("docker info:\n%s", out)
	}
}
