package dockerapi

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
)

// filters is the decoded ?filters= parameter: name → values.
type filters map[string][]string

// parseFilters decodes Docker's filter JSON, both forms: {"name":{"web":true}} and {"name":["web"]}.
func parseFilters(s string) (filters, error) {
	f := filters{}
	if s == "" {
		return f, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &m); err == nil {
		for k, vs := range m {
			for v, on := range vs {
				if on {
					f[k] = append(f[k], v)
				}
			}
			sort.Strings(f[k])
		}
		return f, nil
	}
	var l map[string][]string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, badRequest("invalid filters %q: %v", s, err)
	}
	for k, vs := range l {
		f[k] = vs
	}
	return f, nil
}

// only refuses filters other than names.
func (f filters) only(names ...string) error {
	for k := range f {
		ok := false
		for _, n := range names {
			ok = ok || k == n
		}
		if !ok {
			return badRequest("invalid filter '%s' (Skiff supports %s)", k, strings.Join(names, ", "))
		}
	}
	return nil
}

// any is true when no values are given for name or one of them matches.
func (f filters) any(name string, match func(v string) bool) bool {
	vs := f[name]
	if len(vs) == 0 {
		return true
	}
	for _, v := range vs {
		if match(v) {
			return true
		}
	}
	return false
}

// labels is true when every label filter matches ("key" or "key=value").
func (f filters) labels(labels map[string]string) bool {
	for _, l := range f["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func (f filters) matchContainer(c *engine.Container) bool {
	return f.any("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		f.any("name", func(v string) bool {
			v = strings.TrimPrefix(v, "/")
			if re, err := regexp.Compile(v); err == nil {
				return re.MatchString(c.Name)
			}
			return strings.Contains(c.Name, v)
		}) &&
		f.any("status", func(v string) bool { return v == string(c.State) }) &&
		f.any("exited", func(v string) bool { return c.State == engine.StateExited && v == strconv.Itoa(c.ExitCode) }) &&
		f.any("ancestor", func(v string) bool { return sameImage(v, c.Image, c.ImageID) }) &&
		f.any("health", func(v string) bool {
			if c.Health == nil {
				return v == "none"
			}
			return v == c.Health.Status
		}) &&
		f.any("volume", func(v string) bool {
			for _, m := range c.Mounts {
				if (m.Type == engine.MountVolume && m.Name == v) || m.Target == v || (m.Type != engine.MountVolume && m.Source == v) {
					return true
				}
			}
			return false
		}) &&
		f.labels(c.Config.Labels)
}

// sameImage is true when ref (a reference or an ID prefix) names the image a container was
// created from (as given, and its ID).
func sameImage(ref, image, imageID string) bool {
	if ref == image || strings.HasPrefix(imageID, ref) || strings.HasPrefix(strings.TrimPrefix(imageID, "sha256:"), ref) {
		return true
	}
	a, err1 := images.NormalizeRef(ref)
	b, err2 := images.NormalizeRef(image)
	return err1 == nil && err2 == nil && a == b
}
