package agentproto

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseBoot(t *testing.T) {
	b, err := ParseBoot("console=ttyS0 quiet skiff.channel=virtio-serial:ch0 skiff.time=1764360000000000000 " +
		"skiff.hostname=web skiff.root=root0 skiff.net=none skiff.debug=1 skiff.seed=00ff10 skiff.exit=workload skiff.future=x")
	if err != nil {
		t.Fatal(err)
	}
	want := Boot{Channel: Channel{Kind: ChannelVirtioSerial, PortName: "ch0"},
		Time: time.Unix(0, 1764360000000000000), Hostname: "web", Root: "root0", Net: NetConfig{Mode: NetNone}, Debug: true,
		Seed: []byte{0, 0xff, 0x10}, ExitWithWorkload: true}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("got %+v\nwant %+v", b, want)
	}
	b, err = ParseBoot("skiff.channel=vsock:2048")
	if d := b.WithDefaults(); err != nil || d.Channel.Kind != ChannelVsock || d.Channel.VsockPort != 2048 || d.Net.Mode != NetDHCP ||
		d.Root != DefaultRoot || d.Hostname != DefaultHostname {
		t.Fatalf("vsock: %+v %v", d, err)
	}
	b, _ = ParseBoot("")
	if d := b.WithDefaults(); d.Channel.Kind != ChannelVirtioSerial || d.Channel.PortName != DefaultPortName || !d.Time.IsZero() {
		t.Fatalf("defaults: %+v", d)
	}
	b, err = ParseBoot("skiff.net=static:10.0.2.15/24,10.0.2.2,10.0.2.3")
	wantNet := NetConfig{Mode: NetStatic, Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}}
	if err != nil || !reflect.DeepEqual(b.Net, wantNet) {
		t.Fatalf("static: %+v %v", b.Net, err)
	}
	for _, bad := range []string{"skiff.channel=usb", "skiff.channel=vsock:x", "skiff.time=soon", "skiff.time=-1", "skiff.net=wifi",
		"skiff.seed=zz", "skiff.hostname=", "skiff.root=", "skiff.exit=never",
		"skiff.net=static:", "skiff.net=static:10.0.2.15", "skiff.net=static:10.0.2.15/24", "skiff.net=static:10.0.2.15/24,gw",
		"skiff.net=static:fd00::2/64,fd00::1", "skiff.net=static:10.0.2.15/24,10.0.2.2,dns"} {
		if _, err := ParseBoot(bad); !errors.Is(err, ErrBadBoot) || !strings.Contains(err.Error(), strings.SplitN(bad, "=", 2)[0]) {
			t.Errorf("%q: %v, want an ErrBadBoot naming the key", bad, err)
		}
	}
}

// A restored VM's keys go over its template's: what the line gives
// replaces, the rest (channel, network) stays.
func TestParseBootOnto(t *testing.T) {
	tmpl, err := ParseBoot("skiff.channel=virtio-serial:ch0 skiff.net=static:10.0.2.15/24,10.0.2.2 skiff.template=1 skiff.time=1000 skiff.seed=00")
	if err != nil || !tmpl.Template {
		t.Fatalf("template: %+v %v", tmpl, err)
	}
	line := Boot{Ring: true, Hostname: "web", Time: time.Unix(0, 2000), Seed: []byte{0xff, 1}, ExitWithWorkload: true}.Args()
	b, err := ParseBootOnto(tmpl, strings.Join(line, " "))
	if err != nil {
		t.Fatal(err)
	}
	if b.Hostname != "web" || b.Time != time.Unix(0, 2000) || string(b.Seed) != "\xff\x01" || !b.ExitWithWorkload || !b.Ring ||
		b.Channel.PortName != "ch0" || b.Net.Mode != NetStatic || !b.Template {
		t.Fatalf("restored: %+v", b)
	}
}

func TestBootArgs(t *testing.T) {
	b := Boot{Channel: Channel{Kind: ChannelVsock, VsockPort: DefaultVsockPort}, Hostname: "web", Net: NetConfig{Mode: NetNone},
		Time: time.Unix(0, 5), Seed: []byte{0xab}, Ring: true, NoPageReporting: true}
	want := "skiff.channel=vsock:1024 skiff.ring=1 skiff.noreport=1 skiff.net=none skiff.hostname=web skiff.time=5 skiff.seed=ab"
	if got := strings.Join(b.Args(), " "); got != want {
		t.Fatalf("Args = %s\nwant   %s", got, want)
	}
	if len(Boot{}.Args()) != 0 {
		t.Fatalf("a zero Boot gives keys: %q", Boot{}.Args())
	}
	for name, b := range map[string]Boot{
		"hostname space":  {Hostname: "a init=/bin/sh"},
		"hostname nl":     {Hostname: "a\nb"},
		"hostname nbsp":   {Hostname: "a\u00a0b"},
		"hostname long":   {Hostname: strings.Repeat("h", 65)},
		"root ctl":        {Root: "a\x00b"},
		"port name tab":   {Channel: Channel{Kind: ChannelVirtioSerial, PortName: "a\tb"}},
		"channel kind":    {Channel: Channel{Kind: "usb"}},
		"vsock name":      {Channel: Channel{Kind: ChannelVsock, PortName: "x"}},
		"net mode":        {Net: NetConfig{Mode: "wifi"}},
		"dhcp with addr":  {Net: NetConfig{Mode: NetDHCP, Gateway: netip.MustParseAddr("10.0.0.1")}},
		"static no gw":    {Net: NetConfig{Mode: NetStatic, Addr: netip.MustParsePrefix("10.0.0.2/24")}},
		"static v6":       {Net: NetConfig{Mode: NetStatic, Addr: netip.MustParsePrefix("fd00::2/64"), Gateway: netip.MustParseAddr("fd00::1")}},
		"time before1970": {Time: time.Unix(-1, 0)},
	} {
		if err := b.Validate(); !errors.Is(err, ErrBadBoot) {
			t.Errorf("%s: Validate = %v, want ErrBadBoot", name, err)
		}
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseBoot: any input parses or errors without panicking, and what
// parses is valid and reads back from its Args unchanged.
func FuzzParseBoot(f *testing.F) {
	f.Add("console=ttyS0 skiff.channel=virtio-serial:skiff.agent skiff.ring=1 skiff.net=static:10.0.2.15/24,10.0.2.2,10.0.2.3 " +
		"skiff.hostname=web skiff.time=1700000000000000005 skiff.seed=00ff skiff.template=1 skiff.exit=workload skiff.debug=true skiff.root=r")
	f.Add("skiff.channel=vsock:1024 skiff.net=none skiff.seed= skiff.channel=vsock")
	f.Add("skiff.net=static:10.0.2.15/24,10.0.2.2,::ffff:1.2.3.4,fe80::1 skiff.channel=virtio-serial")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBoot(s)
		if err != nil {
			return
		}
		// What parses is valid but for control characters, which the
		// kernel's command line cannot carry anyway.
		if err := b.Validate(); err != nil && !strings.Contains(err.Error(), "control character") {
			t.Fatalf("ParseBoot(%q) = %+v, which is not valid: %v", s, b, err)
		}
		again, err := ParseBoot(strings.Join(b.Args(), " "))
		if err != nil || !reflect.DeepEqual(again, b) {
			t.Fatalf("ParseBoot(%q) = %+v\nArgs %q read back as %+v, %v", s, b, b.Args(), again, err)
		}
	})
}
