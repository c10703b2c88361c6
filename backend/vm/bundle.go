package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ManifestFile is the name of a bundle's manifest inside its directory.
const ManifestFile = "manifest.json"

// Manifest describes a kernel bundle: the kernel image, the modules the
// guest needs in load order (dependencies first), and a digest of every file.
type Manifest struct {
	Arch    string `json:"arch"`    // "amd64" | "arm64"
	Version string `json:"version"` // kernel release, e.g. "6.1.0-56-cloud-amd64"
	Kernel  string `json:"kernel"`  // path of the kernel image, relative to the bundle dir
	// Modules are file names in the bundle dir, in load order.
	Modules []string `json:"modules"`
	// Files maps every file's path relative to the bundle dir to "sha256:<hex>".
	Files map[string]string `json:"files"`
}

// Bundle is a kernel bundle on disk.
type Bundle struct {
	Dir      string
	Manifest Manifest
}

// KernelPath is the absolute path of the kernel image.
func (b *Bundle) KernelPath() string { return filepath.Join(b.Dir, b.Manifest.Kernel) }

// ModulePath is the path of one module file named in Manifest.Modules.
func (b *Bundle) ModulePath(name string) string { return filepath.Join(b.Dir, name) }

// Digest identifies the bundle's content: the sha256 of its manifest in
// canonical JSON (which names the digest of every file).
func (b *Bundle) Digest() string {
	data, _ := json.Marshal(b.Manifest) // a struct of strings cannot fail to marshal
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// LoadBundle reads and checks the bundle in dir: the manifest must parse,
// name an arch, a kernel and modules that are all listed in Files and present.
// It does not hash the files; see Verify.
func LoadBundle(dir string) (*Bundle, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("kernel bundle %q: %w", dir, err)
	}
	data, err := os.ReadFile(filepath.Join(abs, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("kernel bundle %q: %w", dir, err)
	}
	b := &Bundle{Dir: abs}
	if err := json.Unmarshal(data, &b.Manifest); err != nil {
		return nil, fmt.Errorf("kernel bundle %q: parsing %s: %v: %w", dir, ManifestFile, err, ErrBadBundle)
	}
	m := b.Manifest
	bad := func(f string, a ...any) error {
		return fmt.Errorf("kernel bundle %q: %s: %w", dir, fmt.Sprintf(f, a...), ErrBadBundle)
	}
	switch m.Arch {
	case "amd64", "arm64":
	default:
		return nil, bad("arch %q", m.Arch)
	}
	need := append([]string{m.Kernel}, nil...)
	for _, mod := range m.Modules {
		if strings.ContainsAny(mod, "/\\") || mod == "" || mod == "." || mod == ".." {
			return nil, bad("module name %q", mod)
		}
		need = append(need, mod)
	}
	if m.Kernel == "" {
		return nil, bad("no kernel")
	}
	for rel := range m.Files {
		if !filepath.IsLocal(rel) || strings.ContainsAny(rel, "/\\") {
			return nil, bad("file name %q: a bundle is one flat directory", rel)
		}
	}
	for _, rel := range need {
		if _, ok := m.Files[rel]; !ok {
			return nil, bad("%s has no digest in the manifest", rel)
		}
		if _, err := os.Stat(filepath.Join(abs, rel)); err != nil {
			return nil, bad("%v", err)
		}
	}
	return b, nil
}

// Verify hashes every file in the manifest and compares it with its digest.
func (b *Bundle) Verify() error {
	for rel, want := range b.Manifest.Files {
		got, err := fileDigest(filepath.Join(b.Dir, rel))
		if err != nil {
			return fmt.Errorf("kernel bundle %q: %w", b.Dir, err)
		}
		if got != want {
			return fmt.Errorf("kernel bundle %q: %s has digest %s, manifest says %s: %w", b.Dir, rel, got, want, ErrBadBundle)
		}
	}
	return nil
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
