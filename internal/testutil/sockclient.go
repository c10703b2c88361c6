package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildSockClient builds the static sockclient program (the socket tests' client, run inside a
// container) into dir and returns its path.
func BuildSockClient(dir string) (string, error) {
	bin := filepath.Join(dir, "sockclient")
	build := exec.Command("go", "build", "-o", bin, "github.com/skiff-containers/skiff/internal/testutil/sockclient")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building sockclient: %v\n%s", err, out)
	}
	return bin, nil
}
