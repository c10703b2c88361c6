package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// config says what to check and for which target.
type config struct {
	Dir      string   // directory go list runs in (the module to check); "" = current directory
	GOOS     string   // target GOOS, e.g. "darwin"
	GOARCH   string   // target GOARCH, e.g. "arm64"
	Tags     []string // extra build tags
	Patterns []string // package patterns; empty = ./...
	Verbose  bool     // print dependency errors too (prefixed "(dep)")
	Tests    bool     // also check _test.go files (go list -test)
}

// result summarises one run.
type result struct {
	Packages  int      // packages type-checked (including the standard library)
	Own       int      // of which in the main module
	Errors    []string // errors in main-module packages, one line each
	DepErrors int      // errors in dependencies, ignored
	Elapsed   time.Duration
}

// listPkg is the part of `go list -json` output darwincheck needs.
type listPkg struct {
	ImportPath string
	Dir        string
	Standard   bool
	DepOnly    bool
	GoFiles    []string
	CgoFiles   []string
	ImportMap  map[string]string
	Module     *struct {
		Path      string
		Main      bool
		GoVersion string
	}
	Error *struct{ Err string }
}

// own reports whether p belongs to the main module and was named by the
// patterns (so its function bodies are checked and its errors count).
func (p *listPkg) own() bool {
	return !p.Standard && p.Module != nil && p.Module.Main
}

// check type-checks cfg.Patterns for the target and writes each error in a
// main-module package to out. It returns an error only when the check could
// not run at all.
func check(ctx context.Context, cfg config, out io.Writer) (*result, error) {
	start := time.Now()
	pkgs, err := goList(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res := &result{}
	seen := map[string]bool{} // with -test, a package's own files are checked twice
	report := func(own bool, msg string) {
		if own {
			if seen[msg] {
				return
			}
			seen[msg] = true
			res.Errors = append(res.Errors, msg)
			fmt.Fprintln(out, msg)
			return
		}
		res.DepErrors++
		if cfg.Verbose {
			fmt.Fprintln(out, "(dep)", msg)
		}
	}
	fset := token.NewFileSet()
	done := map[string]*types.Package{"unsafe": types.Unsafe}
	sizes := types.SizesFor("gc", cfg.GOARCH)
	if sizes == nil {
		return nil, fmt.Errorf("unknown GOARCH %q", cfg.GOARCH)
	}
	cwd, _ := os.Getwd()
	for _, p := range pkgs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("type-checking %s: %w", p.ImportPath, err)
		}
		if p.ImportPath == "unsafe" {
			continue
		}
		own := p.own()
		res.Packages++
		if own {
			res.Own++
		}
		if p.Error != nil {
			report(own, fmt.Sprintf("%s: %s", p.ImportPath, strings.TrimSpace(p.Error.Err)))
		}
		files := make([]*ast.File, 0, len(p.GoFiles)+len(p.CgoFiles))
		for _, name := range append(append([]string(nil), p.GoFiles...), p.CgoFiles...) {
			if !filepath.IsAbs(name) { // the generated test main is an absolute path in the build cache
				name = filepath.Join(p.Dir, name)
			}
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution|parser.ParseComments)
			if err != nil {
				report(own, relErr(cwd, err.Error()))
				if f == nil {
					continue
				}
			}
			files = append(files, f)
		}
		conf := types.Config{
			FakeImportC:      true,
			IgnoreFuncBodies: !own,
			Sizes:            sizes,
			Error:            func(err error) { report(own, relErr(cwd, err.Error())) },
			Importer: importerFunc(func(path string) (*types.Package, error) {
				if m, ok := p.ImportMap[path]; ok {
					path = m
				}
				if tp, ok := done[path]; ok && tp != nil {
					return tp, nil
				}
				return nil, fmt.Errorf("package %q is not in the go list -deps output", path)
			}),
		}
		if p.Module != nil && p.Module.GoVersion != "" {
			conf.GoVersion = "go" + p.Module.GoVersion
		}
		// Check returns a usable (possibly incomplete) package even on errors,
		// which the Error callback has already reported.
		tp, _ := conf.Check(p.ImportPath, fset, files, nil)
		done[p.ImportPath] = tp
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// goList runs `go list -e -deps -json` for the target; packages come out in
// dependency order (every package after its imports).
func goList(ctx context.Context, cfg config) ([]*listPkg, error) {
	args := []string{"list", "-e", "-deps", "-json=ImportPath,Dir,Standard,DepOnly,GoFiles,CgoFiles,ImportMap,Module,Error"}
	if cfg.Tests {
		args = append(args, "-test")
	}
	if len(cfg.Tags) > 0 {
		args = append(args, "-tags", strings.Join(cfg.Tags, ","))
	}
	patterns := cfg.Patterns
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	args = append(args, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = cfg.Dir
	cmd.Env = append(os.Environ(), "GOOS="+cfg.GOOS, "GOARCH="+cfg.GOARCH, "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list for %s/%s: %w\n%s", cfg.GOOS, cfg.GOARCH, err, stderr.String())
	}
	var pkgs []*listPkg
	dec := json.NewDecoder(bytes.NewReader(stdout))
	for {
		p := new(listPkg)
		err := dec.Decode(p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decoding go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// relErr shortens an absolute file position at the start of msg to one
// relative to dir, when it lies below dir.
func relErr(dir, msg string) string {
	if dir == "" || !strings.HasPrefix(msg, dir+string(filepath.Separator)) {
		return msg
	}
	return msg[len(dir)+1:]
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
