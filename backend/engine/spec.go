package engine

import (
	"fmt"
	"strings"

	"github.com/skiff-containers/skiff/backend/images"
)

// DefaultPath is the PATH a container gets when neither the image nor the options set one (Docker's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// resolveProcess applies Docker's rules to the options and the image config:
//   - entrypoint: the option when set (a set empty one clears the image's), else the image's;
//   - cmd: the option when given; else the image's, unless a non-empty entrypoint option replaced
//     the image's entrypoint;
//   - env: the image's, then the options' (same key: the option wins; a bare KEY removes it), then
//     PATH (when absent), HOSTNAME, and TERM=xterm for a TTY;
//   - user and working dir: the option, else the image's, else root and "/";
//   - hostname: the option, else the short ID;
//   - stop signal: the option, else the image's, else SIGTERM.
func resolveProcess(id string, o *CreateOptions, img *images.ImageConfig) (Process, error) {
	var p Process
	entry := img.Entrypoint
	cmd := o.Cmd
	if o.Entrypoint != nil {
		entry = *o.Entrypoint
	}
	if len(cmd) == 0 && (o.Entrypoint == nil || len(*o.Entrypoint) == 0) {
		cmd = img.Cmd
	}
	p.Args = append(append([]string{}, entry...), cmd...)
	if len(p.Args) == 0 {
		return Process{}, fmt.Errorf("no command specified: the image has neither entrypoint nor cmd, give one: %w", ErrInvalid)
	}

	p.Hostname = o.Hostname
	if p.Hostname == "" {
		p.Hostname = ShortID(id)
	}
	p.Env = mergeEnv(img.Env, o.Env)
	if envGet(p.Env, "PATH") == "" {
		p.Env = append(p.Env, "PATH="+DefaultPath)
	}
	p.Env = mergeEnv(p.Env, []string{"HOSTNAME=" + p.Hostname})
	if o.TTY && envGet(p.Env, "TERM") == "" {
		p.Env = append(p.Env, "TERM=xterm")
	}

	p.User = firstNonEmpty(o.User, img.User)
	p.WorkingDir = firstNonEmpty(o.WorkingDir, img.WorkingDir, "/")
	if !strings.HasPrefix(p.WorkingDir, "/") {
		return Process{}, fmt.Errorf("working directory %q must be absolute: %w", p.WorkingDir, ErrInvalid)
	}
	p.Health = resolveHealth(o.Healthcheck, img.Healthcheck)
	p.StopSignal = firstNonEmpty(o.StopSignal, img.StopSignal, "SIGTERM")
	if _, err := ParseSignal(p.StopSignal); err != nil {
		return Process{}, fmt.Errorf("stop signal: %w", err)
	}
	return p, nil
}

// mergeEnv returns base with each of over applied: KEY=VALUE sets, bare KEY removes.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, hasValue := strings.Cut(kv, "=")
		idx := -1
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				idx = i
				break
			}
		}
		switch {
		case !hasValue && idx >= 0:
			out = append(out[:idx], out[idx+1:]...)
		case !hasValue:
		case idx >= 0:
			out[idx] = kv
		default:
			out = append(out, kv)
		}
	}
	return out
}

func envGet(env []string, key string) string {
	for _, e := range env {
		if k, v, _ := strings.Cut(e, "="); k == key {
			return v
		}
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
