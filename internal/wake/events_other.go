//go:build !darwin

package wake

import "context"

// platformEvents: no wake notification outside macOS; the jump detector
// covers Linux (a nil channel never delivers).
func platformEvents(context.Context) <-chan struct{} { return nil }
