package agent

import "strings"

// parseModuleOrder lists the module files of /lib/modules/order: one name
// per line, dependencies first; blank lines and # comments are skipped.
func parseModuleOrder(data string) []string {
	var mods []string
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mods = append(mods, line)
	}
	return mods
}

// hostsFile is /etc/hosts for a container.
func hostsFile(hostname, ip string) string {
	s := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if ip == "" {
		ip = "127.0.1.1"
	}
	return s + ip + "\t" + hostname + "\n"
}
