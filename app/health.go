package app

import (
	"context"
	"time"
)

// Health is a container's health-check state (containers with a check).
type Health struct {
	Status        string // starting, healthy, unhealthy
	FailingStreak int
	Log           []HealthResult // the last few checks, oldest first
}

// HealthResult is one run of the check.
type HealthResult struct {
	Start, End time.Time
	ExitCode   int
	Output     string
}

// HealthCheck is a health check given at create (the --health-* flags); zero fields take the
// image's values, then Docker's defaults.
type HealthCheck struct {
	Test          []string // ["CMD-SHELL", cmd], ["CMD", args...] or ["NONE"]
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration
	Retries       int
}

// parseHealth turns the --health-* flags of req into a HealthCheck (nil: the image's).
func parseHealth(req RunRequest) (*HealthCheck, error) {
	if req.NoHealthcheck {
		if req.HealthCmd != "" {
			return nil, invalid("conflicting options: --no-healthcheck and --health-cmd")
		}
		return &HealthCheck{Test: []string{"NONE"}}, nil
	}
	h := &HealthCheck{Retries: req.HealthRetries}
	if req.HealthCmd != "" {
		h.Test = []string{"CMD-SHELL", req.HealthCmd}
	}
	for _, d := range []struct {
		flag, value string
		dst         *time.Duration
	}{{"--health-interval", req.HealthInterval, &h.Interval}, {"--health-timeout", req.HealthTimeout, &h.Timeout},
		{"--health-start-period", req.HealthStartPeriod, &h.StartPeriod}, {"--health-start-interval", req.HealthStartInterval, &h.StartInterval}} {
		if d.value == "" {
			continue
		}
		v, err := time.ParseDuration(d.value)
		if err != nil || v < time.Millisecond {
			return nil, invalid("invalid %s %q: expected a duration of at least 1ms, such as 30s", d.flag, d.value)
		}
		*d.dst = v
	}
	if req.HealthRetries < 0 {
		return nil, invalid("invalid --health-retries %d: must not be negative", req.HealthRetries)
	}
	if len(h.Test) == 0 && h.Interval == 0 && h.Timeout == 0 && h.StartPeriod == 0 && h.StartInterval == 0 && h.Retries == 0 {
		return nil, nil
	}
	return h, nil
}

// RenameBackend is the part of a Backend that renames containers (a Backend without it answers
// unavailable).
type RenameBackend interface {
	RenameContainer(ctx context.Context, id, name string) error
}

// Rename gives a container a new name.
func (s *Containers) Rename(id, name string) error {
	rb, ok := s.b.(RenameBackend)
	if !ok {
		return &Error{Code: CodeUnavailable, Message: "this engine cannot rename containers"}
	}
	if err := ValidateName(name); err != nil {
		return err
	}
	if name == "" {
		return invalid("a new name is required")
	}
	return toError(rb.RenameContainer(s.ctx(), id, name))
}
