package bridge

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/skiff-containers/skiff/app"
)

var errorType = reflect.TypeOf((*error)(nil)).Elem()

// methods maps "Service.Method" to the bound methods of one app.Services value.
type methods map[string]reflect.Value

func methodsOf(svc *app.Services) methods {
	m := methods{}
	for name, v := range map[string]any{"Containers": svc.Containers, "Images": svc.Images, "System": svc.System} {
		rv := reflect.ValueOf(v)
		for i := 0; i < rv.NumMethod(); i++ {
			m[name+"."+rv.Type().Method(i).Name] = rv.Method(i)
		}
	}
	return m
}

// MethodNames lists the methods the bridge serves (for tests and documentation).
func MethodNames() []string {
	svc := app.New(nil, app.EventSinkFunc(func(string, any) {}))
	defer svc.Close()
	var names []string
	for n := range methodsOf(svc) {
		names = append(names, n)
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
