package bridge

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/skiff-containers/skiff/app"
)

var errorType = reflect.TypeOf((*error)(nil)).Elem()

// methods maps "Service.Method" to the bound methods of one app.Services value.
type methods map[string]reflect.Value

// Services lists the services of svc that the bridge serves and the desktop app binds in Wails;
// each is named by its type's name ("Containers"), as Wails names them.
func Services(svc *app.Services) []any {
	return []any{svc.Containers, svc.Images, svc.System, svc.Volumes, svc.Networks, svc.Settings}
}

func methodsOf(svc *app.Services) methods {
	m := methods{}
	for _, v := range Services(svc) {
		rv := reflect.ValueOf(v)
		for i := 0; i < rv.NumMethod(); i++ {
			m[rv.Type().Elem().Name()+"."+rv.Type().Method(i).Name] = rv.Method(i)
		}
	}
	return m
}

// Method is one method the bridge serves.
type Method struct {
	Name     string       // "Service.Method", the name a request carries
	Receiver reflect.Type // the service's type, e.g. *app.Containers
	Method   string       // the Go method's name
	Func     reflect.Type // its signature without the receiver; a trailing error result is the call's error
}

// Methods lists the methods the bridge serves, sorted by name. It is the one listing: the
// dispatcher serves exactly these, and tools/tsgen generates the TypeScript method table from it.
func Methods() []Method {
	svc := app.New(nil, app.EventSinkFunc(func(string, any) {}))
	defer svc.Close()
	recv := map[string]reflect.Type{}
	for _, v := range Services(svc) {
		recv[reflect.TypeOf(v).Elem().Name()] = reflect.TypeOf(v)
	}
	var ms []Method
	for name, fn := range methodsOf(svc) {
		service, method, _ := strings.Cut(name, ".")
		ms = append(ms, Method{Name: name, Receiver: recv[service], Method: method, Func: fn.Type()})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms
}

// MethodNames lists the names of Methods.
func MethodNames() []string {
	var names []string
	for _, m := range Methods() {
		names = append(names, m.Name)
	}
	return names
}

// call decodes params into the method's arguments, calls it, and encodes its result.
func (m methods) call(method string, params []json.RawMessage) (json.RawMessage, *app.Error) {
	fn, ok := m[method]
	if !ok {
		return nil, app.Errorf(app.CodeNotFound, "unknown method %q", method)
	}
	t := fn.Type()
	if len(params) != t.NumIn() {
		return nil, app.Errorf(app.CodeInvalid, "%s takes %d parameters, got %d", method, t.NumIn(), len(params))
	}
	args := make([]reflect.Value, t.NumIn())
	for i := range args {
		p := reflect.New(t.In(i))
		if err := json.Unmarshal(params[i], p.Interface()); err != nil {
			return nil, app.Errorf(app.CodeInvalid, "%s: parameter %d: %v", method, i+1, err)
		}
		args[i] = p.Elem()
	}
	out := fn.Call(args)
	var result any
	for _, v := range out {
		if v.Type() == errorType {
			if !v.IsNil() {
				return nil, toAppError(v.Interface().(error))
			}
			continue
		}
		result = v.Interface()
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return nil, app.Errorf(app.CodeInternal, "%s: encoding the result: %v", method, err)
	}
	return raw, nil
}

func toAppError(err error) *app.Error {
	if e, ok := err.(*app.Error); ok {
		return e
	}
	return &app.Error{Code: app.CodeOf(err), Message: fmt.Sprint(err)}
}
