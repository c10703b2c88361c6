// Package agentbin embeds the static guest agents built by `make agent`
// (skiff-agent-amd64, skiff-agent-arm64 in this directory).
//
//	bin, err := agentbin.Agent("arm64") // the /init of an arm64 initramfs
package agentbin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
)

// The README matches the pattern too, so a build without agents compiles.
//
//go:embed *
var files embed.FS

// ErrMissing: this binary was built without the agent for an arch.
var ErrMissing = errors.New("guest agent not embedded")

// Agent returns the embedded agent binary for arch ("amd64" | "arm64").
func Agent(arch string) ([]byte, error) {
	switch arch {
	case "amd64", "arm64":
	default:
		return nil, fmt.Errorf("guest agent for %q: unsupported arch (amd64, arm64)", arch)
	}
	data, err := files.ReadFile("skiff-agent-" + arch)
	if err != nil || len(data) == 0 {
		return nil, fmt.Errorf("built without the guest agent for %s: run `make agent`: %w", arch, ErrMissing)
	}
	return data, nil
}

// Digest is "sha256:<hex>" of the agent for arch.
func Digest(arch string) (string, error) {
	data, err := Agent(arch)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
