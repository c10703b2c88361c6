// Command tsgen writes the clients of the services' contract from the Go services themselves.
// frontend/src/lib/api.gen.ts, the TypeScript side: an interface for every type the services take,
// return or emit, the method table of exactly the methods the bridge serves (app/bridge.Methods),
// and the payload of each event kind (app.EventPayloads). app/client/services.gen.go, the typed Go
// client's methods (see gogen.go). Types follow encoding/json: keys are the Go field names unless a json tag
// says otherwise, time.Time and []byte are strings, nil slices, maps and pointers are null.
// Parameter names come from the app package's source.
//
//	go run ./tools/tsgen                          # from the repository root (make tsgen)
//	go run ./tools/tsgen -o - -go /dev/null | diff …   # print the TypeScript instead of writing it
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
)

func main() {
	dir := flag.String("app", "app", "the app package's directory (for parameter names and doc comments)")
	out := flag.String("o", "frontend/src/lib/api.gen.ts", `the TypeScript file to write; "-" for stdout`)
	goOut := flag.String("go", "app/client/services.gen.go", `the Go client file to write; "-" for stdout`)
	doc := flag.String("doc", "docs/contracts.md", "the document whose method list to rewrite in place")
	flag.Parse()
	write := func(path string, src []byte) error {
		if path == "-" {
			_, err := os.Stdout.Write(src)
			return err
		}
		return os.WriteFile(path, src, 0o644)
	}
	src, err := generate(*dir, bridge.Methods(), app.EventPayloads())
	if err == nil {
		err = write(*out, src)
	}
	if err == nil {
		var funcs map[string]goFunc
		if funcs, err = parseMethods(*dir); err == nil {
			src, err = generateGo(funcs, bridge.Methods(), app.Streams(), app.EventPayloads())
		}
		if err == nil {
			err = write(*goOut, src)
		}
		if err == nil {
			err = rewriteDoc(*doc, funcs)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsgen:", err)
		os.Exit(1)
	}
}

// goFunc is what the source says of a method: its parameter names and its doc comment.
type goFunc struct {
	params []string
	doc    string
}

// parseMethods reads the methods declared in the non-test Go files of dir, keyed "Type.Method".
func parseMethods(dir string) (map[string]goFunc, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	funcs := map[string]goFunc{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parsing %q: %w", path, err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			recv := fd.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			id, ok := recv.(*ast.Ident)
			if !ok {
				continue
			}
			var gf goFunc
			for _, p := range fd.Type.Params.List {
				for _, n := range p.Names {
					gf.params = append(gf.params, n.Name)
				}
				if len(p.Names) == 0 {
					gf.params = append(gf.params, "")
				}
			}
			gf.doc = strings.Join(strings.Fields(fd.Doc.Text()), " ")
			funcs[id.Name+"."+fd.Name.Name] = gf
		}
	}
	return funcs, nil
}

var errorType = reflect.TypeOf((*error)(nil)).Elem()

// generate returns the TypeScript file for methods and events, naming parameters from the source in dir.
func generate(dir string, methods []bridge.Method, events map[string]any) ([]byte, error) {
	funcs, err := parseMethods(dir)
	if err != nil {
		return nil, err
	}
	g := newGen()
	var table bytes.Buffer
	for _, m := range methods {
		gf, ok := funcs[m.Receiver.Elem().Name()+"."+m.Method]
		if !ok {
			return nil, fmt.Errorf("method %s: no declaration in %s", m.Name, dir)
		}
		var params []string
		for i := 0; i < m.Func.NumIn(); i++ {
			s, err := g.ts(m.Func.In(i), true)
			if err != nil {
				return nil, fmt.Errorf("method %s, parameter %d: %w", m.Name, i+1, err)
			}
			name := fmt.Sprintf("arg%d", i)
			if i < len(gf.params) && gf.params[i] != "" && gf.params[i] != "_" {
				name = gf.params[i]
			}
			params = append(params, name+": "+s)
		}
		result := "void"
		for i := 0; i < m.Func.NumOut(); i++ {
			t := m.Func.Out(i)
			if t == errorType {
				continue
			}
			// A pointer result is nil only with an error, which rejects the promise instead.
			if t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if result, err = g.ts(t, true); err != nil {
				return nil, fmt.Errorf("method %s, result: %w", m.Name, err)
			}
		}
		if gf.doc != "" {
			fmt.Fprintf(&table, "  /** %s */\n", strings.ReplaceAll(gf.doc, "*/", "* /"))
		}
		fmt.Fprintf(&table, "  %q: (%s) => Promise<%s>;\n", m.Name, strings.Join(params, ", "), result)
	}
	kinds := make([]string, 0, len(events))
	for k := range events {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var evs bytes.Buffer
	for _, k := range kinds {
		s, err := g.ts(reflect.TypeOf(events[k]), false)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", k, err)
		}
		fmt.Fprintf(&evs, "  %s: %s;\n", tsKey(k), s)
	}
	var b bytes.Buffer
	b.WriteString("// Code generated by tools/tsgen from the Go services (app/bridge.Methods, app.EventPayloads); DO NOT EDIT.\n")
	b.WriteString("// Run `make tsgen` after changing a service method or a type in app/.\n\n")
	b.WriteString(g.declarations())
	b.WriteString("/** Methods is every method the bridge and the Wails bindings serve, by request name. */\n")
	b.WriteString("export interface Methods {\n" + table.String() + "}\n\n")
	b.WriteString("/** EventPayloads is the payload of each kind of event (see app.EventPayloads for the event names). */\n")
	b.WriteString("export interface EventPayloads {\n" + evs.String() + "}\n")
	return b.Bytes(), nil
}

// rewriteDoc rewrites the method list of the markdown file at path.
func rewriteDoc(path string, funcs map[string]goFunc) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	src, err := generateDoc(old, funcs, bridge.Methods(), app.Streams())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(src, old) {
		return nil
	}
	return os.WriteFile(path, src, 0o644)
}
