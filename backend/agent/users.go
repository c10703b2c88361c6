package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	Name     string
	UID, GID uint32
	Home     string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	Name    string
	GID     uint32
	Members []string
}

// identity is a resolved user: what a process runs as.
type identity struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Name     string   // "" when the uid has no passwd entry
	Home     string
}

func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 7 {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{Name: f[0], UID: uint32(uid), GID: uint32(gid), Home: f[5]})
	}
	return out
}

func parseGroup(data []byte) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 4 {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, groupEntry{Name: f[0], GID: uint32(gid), Members: members})
	}
	return out
}

// resolveUser resolves a user spec ("", "uid", "uid:gid", "name",
// "name:group") against the container's passwd and group files, the way
// Docker does: a numeric uid need not exist, a name must; the primary group
// comes from passwd unless given; supplementary groups are those listing
// the user as a member.
func resolveUser(spec string, passwd, group []byte) (identity, error) {
	users, groups := parsePasswd(passwd), parseGroup(group)
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	id := identity{Home: "/"}
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		id.UID = uint32(n)
		for _, u := range users {
			if u.UID == id.UID {
				id.Name, id.GID, id.Home = u.Name, u.GID, u.Home
				break
			}
		}
	} else {
		found := false
		for _, u := range users {
			if u.Name == userPart {
				id.UID, id.GID, id.Name, id.Home, found = u.UID, u.GID, u.Name, u.Home, true
				break
			}
		}
		if !found {
			return identity{}, fmt.Errorf("user %q: no such user in /etc/passwd: %w", userPart, errBadRequest)
		}
	}
	if hasGroup {
		if groupPart == "" {
			return identity{}, fmt.Errorf("user spec %q: empty group: %w", spec, errBadRequest)
		}
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			id.GID = uint32(n)
		} else {
			found := false
			for _, g := range groups {
				if g.Name == groupPart {
					id.GID, found = g.GID, true
					break
				}
			}
			if !found {
				return identity{}, fmt.Errorf("group %q: no such group in /etc/group: %w", groupPart, errBadRequest)
			}
		}
	}
	id.Groups = []uint32{id.GID}
	if id.Name != "" && !hasGroup {
		for _, g := range groups {
			for _, m := range g.Members {
				if m == id.Name && g.GID != id.GID {
					id.Groups = append(id.Groups, g.GID)
				}
			}
		}
	}
	if id.Home == "" {
		id.Home = "/"
	}
	return id, nil
}

// defaultPath is PATH when neither the image nor the request sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// mergeEnv builds a process environment: defaults (PATH, HOME, HOSTNAME,
// TERM for a TTY) overridden by the request's entries; later entries win.
func mergeEnv(req []string, id identity, hostname string, tty bool) []string {
	base := []string{"PATH=" + defaultPath, "HOME=" + id.Home}
	if hostname != "" {
		base = append(base, "HOSTNAME="+hostname)
	}
	if tty {
		base = append(base, "TERM=xterm")
	}
	idx := map[string]int{}
	var out []string
	for _, e := range append(base, req...) {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := idx[k]; ok {
			out[i] = e
			continue
		}
		idx[k] = len(out)
		out = append(out, e)
	}
	return out
}
