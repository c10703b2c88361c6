package dockerapi

import (
	"github.com/moby/moby/api/types/container"

	"github.com/skiff-containers/skiff/backend/engine"
)

// healthFromAPI maps Config.Healthcheck onto the engine's (nil: the image's).
func healthFromAPI(h *container.HealthConfig) *engine.HealthConfig {
	if h == nil {
		return nil
	}
	return &engine.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
}

// healthConfig is Config.Healthcheck of inspect: the check in force.
func healthConfig(c *engine.Container) *container.HealthConfig {
	h := c.Process.Health
	if h == nil {
		return nil
	}
	return &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
}

// healthState is State.Health of inspect.
func healthState(c *engine.Container) *container.Health {
	if c.Health == nil {
		return nil
	}
	out := &container.Health{Status: container.HealthStatus(c.Health.Status), FailingStreak: c.Health.FailingStreak,
		Log: []*container.HealthcheckResult{}}
	for _, r := range c.Health.Log {
		out.Log = append(out.Log, &container.HealthcheckResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
	}
	return out
}

// healthSuffix is what `docker ps` shows after "Up …": " (healthy)", " (health: starting)".
func healthSuffix(c *engine.Container) string {
	if c.Health == nil || c.State != engine.StateRunning {
		return ""
	}
	if c.Health.Status == engine.HealthStarting {
		return " (health: starting)"
	}
	return " (" + c.Health.Status + ")"
}
