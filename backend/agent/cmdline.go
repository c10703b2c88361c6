package agent

import (
	"path/filepath"
	"strings"
)

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

// moduleParams are the parameters of module name (a file name such as
// "virtio_blk.ko" or "virtio-rng.ko") given on the kernel command line,
// "virtio_blk.queue_depth=64" → "queue_depth=64", space-separated, as
// modprobe passes them: the kernel applies such keys to built-in drivers
// only, so a module the agent loads gets them here. Dashes and underscores
// in the module's name are the same; quoted values are not supported.
func moduleParams(cmdline, name string) string {
	norm := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	mod := norm(strings.TrimSuffix(filepath.Base(name), ".ko"))
	var params []string
	for _, f := range strings.Fields(cmdline) {
		m, param, ok := strings.Cut(f, ".")
		if !ok || norm(m) != mod || param == "" || strings.HasPrefix(param, "=") {
			continue
		}
		params = append(params, param)
	}
	return strings.Join(params, " ")
}

// hostsFile is /etc/hosts for a container.
func hostsFile(hostname, ip string) string {
	s := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if ip == "" {
		ip = "127.0.1.1"
	}
	return s + ip + "\t" + hostname + "\n"
}
