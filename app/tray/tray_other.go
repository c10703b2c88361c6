//go:build !linux && !darwin

package tray

import (
	"context"

	"go.uber.org/zap"
)

func newPlatform(context.Context, *zap.Logger, func(Action)) (platform, error) {
	return nil, ErrNotSupported
}
