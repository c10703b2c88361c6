package vm

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestGuestCmdline(t *testing.T) {
	now := time.Unix(1700000000, 5)
	base := []string{"console=ttyS0", "skiff.channel=virtio-serial:a"}
	nat := MachineSpec{Network: Network{Mode: NetworkNAT}, Cmdline: []string{"skiff.hostname=web"}}
	got := guestCmdline(base, nat, "static:10.0.2.15/24,10.0.2.2", now)
	want := regexp.MustCompile(`^console=ttyS0 skiff.channel=virtio-serial:a skiff.net=static:10.0.2.15/24,10.0.2.2 ` +
		`skiff.hostname=web skiff.time=1700000000000000005 skiff.seed=[0-9a-f]{64}$`)
	if !want.MatchString(got) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if again := guestCmdline(base, nat, "", now); again[strings.Index(again, "skiff.seed="):] == got[strings.Index(got, "skiff.seed="):] {
		t.Fatal("two boots got the same entropy seed")
	}
	if got := guestCmdline(base, nat, "", now); strings.Contains(got, "skiff.net=") {
		t.Fatalf("no default network key: the agent's own default (dhcp) applies: %s", got)
	}
	none := MachineSpec{Network: Network{Mode: NetworkNone}}
	if got := guestCmdline(base, none, "static:x", now); !strings.Contains(got, " skiff.net=none ") {
		t.Fatalf("no network: %s", got)
	}
	// Keys the caller gave win, once each.
	own := MachineSpec{Cmdline: []string{"skiff.net=dhcp", "skiff.time=42", "skiff.seed=00ff"}}
	got = guestCmdline(base, own, "static:x", now)
	for _, k := range []string{"skiff.net=", "skiff.time=", "skiff.seed="} {
		if strings.Count(got, k) != 1 {
			t.Errorf("%s given by the caller appears %d times: %s", k, strings.Count(got, k), got)
		}
	}
	if !strings.HasSuffix(got, "skiff.net=dhcp skiff.time=42 skiff.seed=00ff") {
		t.Errorf("caller's keys: %s", got)
	}
}
