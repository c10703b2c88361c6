package vm

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

func TestGuestCmdline(t *testing.T) {
	now := time.Unix(1700000000, 5)
	static := agentproto.NetConfig{Mode: agentproto.NetStatic, Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2")}
	nat := MachineSpec{Network: Network{Mode: NetworkNAT}, Cmdline: []string{"mitigations=off"}, Boot: agentproto.Boot{Hostname: "web"}}
	b := GuestBoot(nat, static, now)
	b.Channel = agentproto.Channel{Kind: agentproto.ChannelVirtioSerial, PortName: "a"}
	got := GuestCmdline([]string{"console=ttyS0"}, nat, b)
	if !strings.HasPrefix(got, "console=ttyS0 virtio_blk.num_request_queues=1 virtio_blk.queue_depth=64 mitigations=off skiff.") {
		t.Fatalf("the base, the devices' sizes, then the spec's arguments, then the agent's keys: %s", got)
	}
	back, err := agentproto.ParseBoot(got)
	if err != nil || !reflect.DeepEqual(back, b) || back.Hostname != "web" || !back.Time.Equal(now) || len(back.Seed) != 32 ||
		!reflect.DeepEqual(back.Net, static) {
		t.Fatalf("%s\nreads back as %+v, %v\nwant %+v", got, back, err, b)
	}
	if again := GuestBoot(nat, static, now); bytes.Equal(again.Seed, b.Seed) {
		t.Fatal("two boots got the same entropy seed")
	}
	if b := GuestBoot(nat, agentproto.NetConfig{}, now); b.Net.Mode != "" {
		t.Fatalf("no default network key: the agent's own default (dhcp) applies: %+v", b.Net)
	}
	none := MachineSpec{Network: Network{Mode: NetworkNone}}
	if b := GuestBoot(none, static, now); b.Net.Mode != agentproto.NetNone {
		t.Fatalf("no network: %+v", b.Net)
	}
	// Keys the caller gave win.
	own := MachineSpec{Boot: agentproto.Boot{Net: agentproto.NetConfig{Mode: agentproto.NetDHCP}, Time: time.Unix(0, 42), Seed: []byte{0, 0xff}}}
	if b := GuestBoot(own, static, now); !reflect.DeepEqual(b, own.Boot) {
		t.Errorf("caller's keys: got %+v, want %+v", b, own.Boot)
	}
}
