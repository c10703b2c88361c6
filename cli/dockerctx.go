package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app/bridge"
)

// DockerHost is the DOCKER_HOST of the engine of data dir home.
func DockerHost(home string) string {
	return "unix://" + filepath.Join(home, bridge.DockerSocketName)
}

func (c *cliCtx) dockerContextCmd() *cobra.Command {
	var use bool
	var name string
	cmd := &cobra.Command{
		Use:   "docker-context [--use] [--name NAME]",
		Short: "Create or update a Docker CLI context for this engine's Docker socket",
		Long: "Writes the Docker CLI context NAME (default skiff) pointing at SKIFF_HOME/docker.sock into the\n" +
			"Docker CLI's config ($DOCKER_CONFIG, else ~/.docker). The current context changes only with --use.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := DockerContext(c.home, name, use)
			if err != nil {
				return err
			}
			fmt.Fprint(c.out, msg)
			return nil
		},
	}
	cmd.Flags().BoolVar(&use, "use", false, "also make it the Docker CLI's current context")
	cmd.Flags().StringVar(&name, "name", "skiff", "the context's name")
	return cmd
}

// DockerContext writes the Docker CLI context name for the engine of data
// dir home (`skiff docker-context`), making it the current context when use
// is set (--use, and the menu-bar item), and returns what to tell the user.
func DockerContext(home, name string, use bool) (string, error) {
	home, err := filepath.Abs(home)
	if err != nil {
		return "", err
	}
	dir, err := dockerConfigDir()
	if err != nil {
		return "", err
	}
	host := DockerHost(home)
	if err := writeDockerContext(dir, name, host); err != nil {
		return "", err
	}
	msg := fmt.Sprintf("Docker context %q: %s\n", name, host)
	if !use {
		return msg + fmt.Sprintf("Use it with `docker --context %s …`, `docker context use %s`, or `skiff docker-context --use`\n", name, name), nil
	}
	if err := setCurrentDockerContext(dir, name); err != nil {
		return "", err
	}
	return msg + fmt.Sprintf("Current Docker context is now %q\n", name), nil
}

// dockerConfigDir is the Docker CLI's config directory: $DOCKER_CONFIG, else ~/.docker.
func dockerConfigDir() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Abs(d)
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the Docker CLI's config directory: %w", err)
	}
	return filepath.Join(h, ".docker"), nil
}

// writeDockerContext writes the context's metadata as the Docker CLI stores it:
// contexts/meta/<sha256 of the name>/meta.json.
func writeDockerContext(configDir, name, host string) error {
	if name == "" || name == "default" {
		return fmt.Errorf("context name %q: choose another name (default is the Docker CLI's own)", name)
	}
	sum := sha256.Sum256([]byte(name))
	dir := filepath.Join(configDir, "contexts", "meta", hex.EncodeToString(sum[:]))
	meta := map[string]any{
		"Name":      name,
		"Metadata":  map[string]any{"Description": "Skiff"},
		"Endpoints": map[string]any{"docker": map[string]any{"Host": host, "SkipTLSVerify": false}},
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing Docker context %q: %w", name, err)
	}
	return writeFileAtomic(filepath.Join(dir, "meta.json"), b, 0o644)
}

// setCurrentDockerContext sets currentContext in config.json, keeping every other key.
func setCurrentDockerContext(configDir, name string) error {
	p := filepath.Join(configDir, "config.json")
	cfg := map[string]json.RawMessage{}
	mode := fs.FileMode(0o600)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		if st, err := os.Stat(p); err == nil {
			mode = st.Mode().Perm()
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading %s: %w", p, err)
	}
	cfg["currentContext"], _ = json.Marshal(name)
	out, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(configDir, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(p, append(out, '\n'), mode)
}

func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".skiff-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
