//go:build darwin

package tray

/*
#cgo CFLAGS: -x objective-c -fobjc-arc -mmacosx-version-min=11
#cgo LDFLAGS: -framework Cocoa
#include <stdlib.h>
#include "tray_darwin.h"
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"strings"
	"sync"
	"unsafe"

	"go.uber.org/zap"
)

// darwinTray is an NSStatusItem (tray_darwin.m). All AppKit work is
// dispatched to the main queue, which the Wails app's run loop drains.
type darwinTray struct {
	mu  sync.Mutex     // guards ctl (nil after close)
	ctl unsafe.Pointer // the Objective-C controller, retained by skiffTrayCreate
}

func newPlatform(_ context.Context, _ *zap.Logger, click func(Action)) (platform, error) {
	h := cgo.NewHandle(click) // deleted by skiffTrayReleased, on the main queue
	return &darwinTray{ctl: C.skiffTrayCreate(C.uintptr_t(h))}, nil
}

func (d *darwinTray) show(entries []Entry) {
	flat, actions := flatten(entries)
	if len(flat) == 0 {
		return
	}
	var zero C.SkiffTrayEntry
	base := C.malloc(C.size_t(len(flat)) * C.size_t(unsafe.Sizeof(zero)))
	defer C.free(base)
	rows := unsafe.Slice((*C.SkiffTrayEntry)(base), len(flat))
	var cstrs []unsafe.Pointer
	cstr := func(s string) *C.char {
		p := C.CString(s)
		cstrs = append(cstrs, unsafe.Pointer(p))
		return p
	}
	defer func() {
		for _, p := range cstrs {
			C.free(p)
		}
	}()
	for i, f := range flat {
		rows[i] = C.SkiffTrayEntry{title: cstr(f.Title), depth: C.int(f.Depth)}
		if f.Separator {
			rows[i].separator = 1
		}
		if f.Enabled {
			rows[i].enabled = 1
		}
		if f.Tag >= 0 {
			rows[i].action = cstr(encodeAction(actions[f.Tag]))
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctl != nil {
		C.skiffTraySetMenu(d.ctl, &rows[0], C.int(len(rows)))
	}
}

func (d *darwinTray) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctl != nil {
		C.skiffTrayDestroy(d.ctl)
		d.ctl = nil
	}
}

// encodeAction is how an action rides in an NSMenuItem's representedObject.
func encodeAction(a Action) string { return string(a.Kind) + ":" + a.ID }

//export skiffTrayClicked
func skiffTrayClicked(handle C.uintptr_t, action *C.char) {
	click := cgo.Handle(handle).Value().(func(Action))
	kind, id, _ := strings.Cut(C.GoString(action), ":")
	click(Action{Kind: ActionKind(kind), ID: id}) // Tray.do: returns at once
}

//export skiffTrayReleased
func skiffTrayReleased(handle C.uintptr_t) { cgo.Handle(handle).Delete() }
