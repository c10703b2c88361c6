package agent

import (
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// bootConfig is what the host tells the agent on the kernel command line
// (docs/contracts.md, "Guest ↔ host").
type bootConfig struct {
	Channel   string // "virtio-serial" or "vsock"
	PortName  string // virtio-serial port name
	VsockPort uint32
	Time      time.Time // zero: not given
	Hostname  string
	RootTag   string
	Net       string     // "dhcp", "static" or "none"
	Static    *netConfig // Net "static": the address, gateway and DNS servers
	Debug     bool
	Seed      []byte // entropy from the host
	// ExitWithWorkload powers the VM off once the workload has exited.
	ExitWithWorkload bool
	// Template boots a snapshot template: the agent initialises the guest
	// up to the container's own parts, says so on the channel and waits
	// there, across the snapshot, for each restored VM's own keys
	// (awaitRestore).
	Template bool
	// Ring moves the channel's bytes to a shared-memory ring (an ivshmem
	// device) once the agent says so on the virtio-serial port, which then
	// carries only wake-ups (ring.go).
	Ring bool
}

const (
	defaultPortName  = "skiff.agent"
	defaultVsockPort = 1024
)

// parseCmdline reads the skiff.* keys of a kernel command line. Unknown
// keys are ignored; malformed values of known keys are errors.
func parseCmdline(s string) (bootConfig, error) {
	return parseCmdlineOnto(bootConfig{Channel: "virtio-serial", PortName: defaultPortName,
		VsockPort: defaultVsockPort, Hostname: "skiff", RootTag: "rootfs", Net: "dhcp"}, s)
}

// parseCmdlineOnto reads the skiff.* keys of s over c: a key s gives
// replaces c's value, the others stay.
func parseCmdlineOnto(c bootConfig, s string) (bootConfig, error) {
	for _, field := range strings.Fields(s) {
		key, val, _ := strings.Cut(field, "=")
		switch key {
		case "skiff.channel":
			kind, arg, _ := strings.Cut(val, ":")
			switch kind {
			case "virtio-serial":
				c.Channel = kind
				if arg != "" {
					c.PortName = arg
				}
			case "vsock":
				c.Channel = kind
				if arg != "" {
					p, err := strconv.ParseUint(arg, 10, 32)
					if err != nil {
						return c, fmt.Errorf("skiff.channel=%s: bad vsock port: %w", val, err)
					}
					c.VsockPort = uint32(p)
				}
			default:
				return c, fmt.Errorf("skiff.channel=%s: want virtio-serial:<name> or vsock:<port>", val)
			}
		case "skiff.time":
			ns, err := strconv.ParseInt(val, 10, 64)
			if err != nil || ns <= 0 {
				return c, fmt.Errorf("skiff.time=%s: want unix nanoseconds", val)
			}
			c.Time = time.Unix(0, ns)
		case "skiff.hostname":
			if val == "" || len(val) > 64 {
				return c, fmt.Errorf("skiff.hostname=%q: want 1 to 64 characters", val)
			}
			c.Hostname = val
		case "skiff.root":
			if val == "" {
				return c, fmt.Errorf("skiff.root: empty tag")
			}
			c.RootTag = val
		case "skiff.net":
			switch {
			case val == "dhcp" || val == "none":
				c.Net, c.Static = val, nil
			case strings.HasPrefix(val, "static:"):
				sc, err := parseStaticNet(strings.TrimPrefix(val, "static:"))
				if err != nil {
					return c, fmt.Errorf("skiff.net=%s: %w", val, err)
				}
				c.Net, c.Static = "static", &sc
			default:
				return c, fmt.Errorf("skiff.net=%s: want dhcp, none or static:ADDR/PREFIX,GATEWAY[,DNS...]", val)
			}
		case "skiff.debug":
			c.Debug = val == "1" || val == "true"
		case "skiff.seed":
			b, err := hex.DecodeString(val)
			if err != nil {
				return c, fmt.Errorf("skiff.seed: %w", err)
			}
			c.Seed = b
		case "skiff.exit":
			if val != "workload" && val != "" {
				return c, fmt.Errorf("skiff.exit=%s: want workload", val)
			}
			c.ExitWithWorkload = val == "workload"
		case "skiff.template":
			c.Template = val == "1"
		case "skiff.ring":
			c.Ring = val == "1"
		}
	}
	return c, nil
}

// parseStaticNet reads "ADDR/PREFIX,GATEWAY[,DNS...]" (IPv4), the
// configuration a host whose network it knows in advance (QEMU's user-mode
// network) passes instead of making the guest ask by DHCP.
func parseStaticNet(v string) (netConfig, error) {
	f := strings.Split(v, ",")
	if len(f) < 2 {
		return netConfig{}, fmt.Errorf("want ADDR/PREFIX,GATEWAY[,DNS...]")
	}
	ip, ipnet, err := net.ParseCIDR(f[0])
	if err != nil || ip.To4() == nil {
		return netConfig{}, fmt.Errorf("address %q: want an IPv4 ADDR/PREFIX", f[0])
	}
	c := netConfig{Addr: net.IPNet{IP: ip.To4(), Mask: ipnet.Mask}}
	if c.Gateway = net.ParseIP(f[1]).To4(); c.Gateway == nil {
		return netConfig{}, fmt.Errorf("gateway %q: want an IPv4 address", f[1])
	}
	for _, d := range f[2:] {
		dns := net.ParseIP(d)
		if dns == nil {
			return netConfig{}, fmt.Errorf("DNS server %q: want an IP address", d)
		}
		c.DNS = append(c.DNS, dns)
	}
	return c, nil
}

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
