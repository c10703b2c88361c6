package agentproto

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Boot is what the host tells the agent before the channel exists: the
// skiff.* keys of the guest's kernel command line (docs/contracts.md,
// "Guest ↔ host"), and the one line of a restored VM's own keys in the
// snapshot handshake. Args writes them, ParseBoot reads them; this is the
// only place either is spelled out.
//
//	b := agentproto.Boot{Hostname: "web", Net: agentproto.NetConfig{Mode: agentproto.NetNone}}
//	cmdline := strings.Join(append([]string{"console=ttyS0"}, b.Args()...), " ")
//	got, err := agentproto.ParseBoot(cmdline) // got == b
//
// A zero field is a key not given: the agent applies its default
// (WithDefaults), and in a restore line the template's value stays.
type Boot struct {
	Channel  Channel   // skiff.channel
	Time     time.Time // skiff.time, unix nanoseconds
	Hostname string    // skiff.hostname, 1 to 64 bytes
	Root     string    // skiff.root: the virtiofs tag of the root file system, or RootFromDisks
	Net      NetConfig // skiff.net
	Debug    bool      // skiff.debug=1
	Seed     []byte    // skiff.seed, hex: entropy from the host
	// ExitWithWorkload (skiff.exit=workload) powers the VM off once the
	// workload has exited.
	ExitWithWorkload bool
	// Template (skiff.template=1) boots a snapshot template: the agent
	// initialises the guest up to the container's own parts, writes
	// TemplateReady and waits, across the snapshot, for each restored VM's
	// own keys.
	Template bool
	// Ring (skiff.ring=1) moves the channel's bytes to a shared-memory ring
	// once the agent says RingOK on the virtio-serial port.
	Ring bool
	// NoPageReporting (skiff.noreport=1) turns the guest's free page
	// reporting off: a VM whose RAM is copy-on-write over its snapshot's
	// cannot give pages back (QEMU cannot discard them) and would only log
	// each refusal.
	NoPageReporting bool
}

// Channel kinds (skiff.channel=KIND[:ARG]).
const (
	ChannelVirtioSerial = "virtio-serial" // ARG: the port name
	ChannelVsock        = "vsock"         // ARG: the port number
)

// Channel is the transport the agent serves on.
type Channel struct {
	Kind      string // "" (not given), ChannelVirtioSerial or ChannelVsock
	PortName  string // virtio-serial: the port's name; "": DefaultPortName
	VsockPort uint32 // vsock: the port; 0: DefaultVsockPort
}

// The agent's defaults for keys not given.
const (
	DefaultPortName  = "skiff.agent" // virtio-serial port name (QEMU)
	DefaultVsockPort = 1024          // vsock port (vz)
	DefaultHostname  = "skiff"
	DefaultRoot      = "rootfs"
)

// The container root from block devices (docs/contracts.md, "Disk root").
// When Boot.Root is RootFromDisks the agent mounts the disk whose serial (QEMU)
// or block device identifier (vz) is ImageDiskID read-only as ext4 (the
// image's layers), the disk UpperDiskID read-write as ext4 (an empty ext4 the
// host made; the agent creates /upper and /work in it the first time), and
// makes overlay(lower=image, upper=/upper, work=/work) the container's root.
// Any other Boot.Root is a virtiofs tag.
const (
	ImageDiskID   = "skiff-image"
	UpperDiskID   = "skiff-upper"
	RootFromDisks = "skiff-disks"
)

// Network modes (skiff.net).
const (
	NetDHCP   = "dhcp"
	NetNone   = "none"
	NetStatic = "static" // skiff.net=static:ADDR/PREFIX,GATEWAY[,DNS...]
)

// NetConfig is the guest's network configuration.
type NetConfig struct {
	Mode    string       // "" (not given), NetDHCP, NetNone or NetStatic
	Addr    netip.Prefix // NetStatic: the IPv4 address and prefix
	Gateway netip.Addr   // NetStatic: the IPv4 default gateway
	DNS     []netip.Addr // NetStatic: name servers
}

// The handshake lines on the virtio-serial port (docs/contracts.md, "Boot
// snapshots", "Shared-memory channel"). Each is sent followed by "\n".
const (
	// RingOK is the agent's first line with skiff.ring=1 when the channel
	// moves to the shared-memory ring.
	RingOK = "skiff-ring ok"
	// RingOff starts the agent's first line with skiff.ring=1 when the
	// channel stays on the port; the reason follows.
	RingOff = "skiff-ring off: "
	// TemplateReady is a template agent's line once the guest is ready to
	// be snapshotted; the host then sends the restore line (Args).
	TemplateReady = "skiff-template-ready"
	// RestoredAck is a restored agent's answer to the restore line.
	RestoredAck = "skiff-restored"
	// RestoreError starts the agent's answer to a restore line it refused;
	// the reason follows.
	RestoreError = "error: "
)

// ErrBadBoot classes a malformed skiff.* key or a Boot Args cannot write.
var ErrBadBoot = errors.New("bad boot parameters")

// Args is b as skiff.* kernel arguments, one per field given, in a fixed
// order. It writes values as they are: Validate says whether they read back.
func (b Boot) Args() []string {
	var a []string
	switch b.Channel.Kind {
	case "":
	case ChannelVsock:
		if b.Channel.VsockPort != 0 {
			a = append(a, "skiff.channel=vsock:"+strconv.FormatUint(uint64(b.Channel.VsockPort), 10))
		} else {
			a = append(a, "skiff.channel=vsock")
		}
	default:
		if b.Channel.PortName != "" {
			a = append(a, "skiff.channel="+b.Channel.Kind+":"+b.Channel.PortName)
		} else {
			a = append(a, "skiff.channel="+b.Channel.Kind)
		}
	}
	if b.Ring {
		a = append(a, "skiff.ring=1")
	}
	if b.NoPageReporting {
		a = append(a, "skiff.noreport=1")
	}
	if b.Template {
		a = append(a, "skiff.template=1")
	}
	if b.Net.Mode != "" {
		a = append(a, "skiff.net="+b.Net.String())
	}
	if b.Hostname != "" {
		a = append(a, "skiff.hostname="+b.Hostname)
	}
	if b.Root != "" {
		a = append(a, "skiff.root="+b.Root)
	}
	if b.Debug {
		a = append(a, "skiff.debug=1")
	}
	if b.ExitWithWorkload {
		a = append(a, "skiff.exit=workload")
	}
	if !b.Time.IsZero() {
		a = append(a, "skiff.time="+strconv.FormatInt(b.Time.UnixNano(), 10))
	}
	if len(b.Seed) > 0 {
		a = append(a, "skiff.seed="+hex.EncodeToString(b.Seed))
	}
	return a
}

// String is the value of skiff.net.
func (n NetConfig) String() string {
	if n.Mode != NetStatic {
		return n.Mode
	}
	s := "static:" + n.Addr.String() + "," + n.Gateway.String()
	for _, d := range n.DNS {
		s += "," + d.String()
	}
	return s
}

// Validate says whether b's Args read back as b: known channel and network
// kinds, a static network's IPv4 address and gateway, a hostname of 1 to 64
// bytes, a clock after 1970, and no whitespace or control character in a
// value (it would split or end the command line).
func (b Boot) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadBoot, fmt.Sprintf(format, a...))
	}
	plain := func(key, v string) error {
		if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return bad("%s %q holds whitespace or a control character", key, v)
		}
		return nil
	}
	switch b.Channel.Kind {
	case "", ChannelVirtioSerial, ChannelVsock:
	default:
		return bad("skiff.channel kind %q: want %s or %s", b.Channel.Kind, ChannelVirtioSerial, ChannelVsock)
	}
	if b.Channel.Kind != ChannelVirtioSerial && b.Channel.PortName != "" || b.Channel.Kind != ChannelVsock && b.Channel.VsockPort != 0 {
		return bad("skiff.channel %+v: a port name is for %s, a port number for %s", b.Channel, ChannelVirtioSerial, ChannelVsock)
	}
	if err := plain("skiff.channel port name", b.Channel.PortName); err != nil {
		return err
	}
	if len(b.Hostname) > 64 {
		return bad("skiff.hostname %q: want 1 to 64 bytes", b.Hostname)
	}
	if err := plain("skiff.hostname", b.Hostname); err != nil {
		return err
	}
	if err := plain("skiff.root", b.Root); err != nil {
		return err
	}
	if !b.Time.IsZero() && b.Time.UnixNano() <= 0 {
		return bad("skiff.time %s: want a time after 1970", b.Time)
	}
	switch n := b.Net; n.Mode {
	case "", NetDHCP, NetNone:
		if n.Addr.IsValid() || n.Gateway.IsValid() || len(n.DNS) > 0 {
			return bad("skiff.net %q: addresses are for %s", n.Mode, NetStatic)
		}
	case NetStatic:
		if _, err := parseStaticNet(strings.TrimPrefix(n.String(), "static:")); err != nil {
			return bad("skiff.net %s: %v", n, err)
		}
	default:
		return bad("skiff.net %q: want %s, %s or %s", n.Mode, NetDHCP, NetNone, NetStatic)
	}
	return nil
}

// WithDefaults returns b with the agent's defaults for the keys not given:
// the virtio-serial channel on DefaultPortName (vsock on DefaultVsockPort),
// DefaultHostname, DefaultRoot and DHCP.
func (b Boot) WithDefaults() Boot {
	if b.Channel.Kind == "" {
		b.Channel.Kind = ChannelVirtioSerial
	}
	if b.Channel.Kind == ChannelVirtioSerial && b.Channel.PortName == "" {
		b.Channel.PortName = DefaultPortName
	}
	if b.Channel.Kind == ChannelVsock && b.Channel.VsockPort == 0 {
		b.Channel.VsockPort = DefaultVsockPort
	}
	if b.Hostname == "" {
		b.Hostname = DefaultHostname
	}
	if b.Root == "" {
		b.Root = DefaultRoot
	}
	if b.Net.Mode == "" {
		b.Net.Mode = NetDHCP
	}
	return b
}

// ParseBoot reads the skiff.* keys of a kernel command line (or a restore
// line). Other arguments and unknown skiff.* keys are ignored; a malformed
// value of a known key is an ErrBadBoot error naming it.
func ParseBoot(cmdline string) (Boot, error) {
	return ParseBootOnto(Boot{}, cmdline)
}

// ParseBootOnto reads the skiff.* keys of cmdline over b: a key cmdline
// gives replaces b's value, the others stay. A restored VM's agent reads its
// restore line onto its template's Boot.
func ParseBootOnto(b Boot, cmdline string) (Boot, error) {
	for _, field := range strings.Fields(cmdline) {
		key, val, _ := strings.Cut(field, "=")
		if !strings.HasPrefix(key, "skiff.") {
			continue
		}
		if err := b.set(key, val); err != nil {
			return b, fmt.Errorf("%w: %s=%s: %v", ErrBadBoot, key, val, err)
		}
	}
	return b, nil
}

// set reads one key's value into b.
func (b *Boot) set(key, val string) error {
	switch key {
	case "skiff.channel":
		kind, arg, _ := strings.Cut(val, ":")
		switch kind {
		case ChannelVirtioSerial:
			b.Channel = Channel{Kind: kind, PortName: arg}
		case ChannelVsock:
			var p uint64
			if arg != "" {
				var err error
				if p, err = strconv.ParseUint(arg, 10, 32); err != nil {
					return fmt.Errorf("bad vsock port: %w", err)
				}
			}
			b.Channel = Channel{Kind: kind, VsockPort: uint32(p)}
		default:
			return fmt.Errorf("want virtio-serial:<name> or vsock:<port>")
		}
	case "skiff.time":
		ns, err := strconv.ParseInt(val, 10, 64)
		if err != nil || ns <= 0 {
			return fmt.Errorf("want unix nanoseconds")
		}
		b.Time = time.Unix(0, ns)
	case "skiff.hostname":
		if val == "" || len(val) > 64 {
			return fmt.Errorf("want 1 to 64 characters")
		}
		b.Hostname = val
	case "skiff.root":
		if val == "" {
			return fmt.Errorf("empty tag")
		}
		b.Root = val
	case "skiff.net":
		switch {
		case val == NetDHCP || val == NetNone:
			b.Net = NetConfig{Mode: val}
		case strings.HasPrefix(val, "static:"):
			n, err := parseStaticNet(strings.TrimPrefix(val, "static:"))
			if err != nil {
				return err
			}
			b.Net = n
		default:
			return fmt.Errorf("want dhcp, none or static:ADDR/PREFIX,GATEWAY[,DNS...]")
		}
	case "skiff.debug":
		b.Debug = val == "1" || val == "true"
	case "skiff.seed":
		s, err := hex.DecodeString(val)
		if err != nil {
			return err
		}
		b.Seed = nil
		if len(s) > 0 {
			b.Seed = s
		}
	case "skiff.exit":
		if val != "workload" && val != "" {
			return fmt.Errorf("want workload")
		}
		b.ExitWithWorkload = val == "workload"
	case "skiff.template":
		b.Template = val == "1"
	case "skiff.ring":
		b.Ring = val == "1"
	case "skiff.noreport":
		b.NoPageReporting = val == "1"
	}
	return nil
}

// parseStaticNet reads "ADDR/PREFIX,GATEWAY[,DNS...]" (IPv4), the
// configuration a host whose network it knows in advance (QEMU's user-mode
// network) passes instead of making the guest ask by DHCP.
func parseStaticNet(v string) (NetConfig, error) {
	f := strings.Split(v, ",")
	if len(f) < 2 {
		return NetConfig{}, fmt.Errorf("want ADDR/PREFIX,GATEWAY[,DNS...]")
	}
	addr, err := netip.ParsePrefix(f[0])
	if err != nil || !addr.Addr().Is4() {
		return NetConfig{}, fmt.Errorf("address %q: want an IPv4 ADDR/PREFIX", f[0])
	}
	n := NetConfig{Mode: NetStatic, Addr: addr}
	if n.Gateway, err = netip.ParseAddr(f[1]); err != nil || !n.Gateway.Is4() {
		return NetConfig{}, fmt.Errorf("gateway %q: want an IPv4 address", f[1])
	}
	for _, d := range f[2:] {
		dns, err := netip.ParseAddr(d)
		if err != nil || dns.Zone() != "" {
			return NetConfig{}, fmt.Errorf("DNS server %q: want an IP address", d)
		}
		n.DNS = append(n.DNS, dns)
	}
	return n, nil
}
