//go:build darwin

package wake

/*
#cgo CFLAGS: -x objective-c -fno-objc-arc
#cgo LDFLAGS: -framework Cocoa
#include <stdint.h>
void *skiffWakeObserve(uintptr_t handle);
void skiffWakeStop(void *observer, uintptr_t handle);
*/
import "C"

import (
	"context"
	"runtime/cgo"
)

// platformEvents observes NSWorkspaceDidWakeNotification until ctx is done.
// The observer runs its block on the main queue and is removed there too
// (wake_darwin.m), so a notification never races the handle's deletion.
func platformEvents(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1) // never closed: the main queue may still hold a send
	h := cgo.NewHandle(ch)
	obs := C.skiffWakeObserve(C.uintptr_t(h))
	go func() {
		<-ctx.Done()
		C.skiffWakeStop(obs, C.uintptr_t(h))
	}()
	return ch
}

//export skiffWakeFired
func skiffWakeFired(handle C.uintptr_t) {
	ch := cgo.Handle(handle).Value().(chan struct{})
	select {
	case ch <- struct{}{}:
	default:
	}
}

//export skiffWakeRelease
func skiffWakeRelease(handle C.uintptr_t) { cgo.Handle(handle).Delete() }
