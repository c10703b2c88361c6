package qemu

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// TestDelayLoopPreset: a cold 2-vCPU amd64 guest under TCG gets lpj= and tsc_early_khz= from the
// host's TSC rate, so no vCPU calibrates its delay loop: every CPU's BogoMIPS in /proc/cpuinfo is
// the preset value (a calibrated secondary's differs), the kernel takes the preset TSC rate (its
// "Detected ... MHz" line) and never measures the TSC against the PIT or the HPET at boot, and the
// rate agrees with what the guest kernel measures itself.
func TestDelayLoopPreset(t *testing.T) {
	if vm.HostArch() != "amd64" {
		t.Skip("the delay loop preset is for amd64 guests on an amd64 host")
	}
	h := testQEMU(t)
	spec := testinitSpec(t, "amd64")
	spec.CPUs = 2
	spec.Cmdline = []string{"loglevel=7"} // the tsc: lines (KERN_INFO) on the console
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	accel, err := h.accelFor(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if accel != "tcg" {
		t.Skipf("accelerator %s: the preset is for TCG", accel)
	}
	m, err := h.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background(), true)
	c, err := m.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, "read /proc/cpuinfo\n"); err != nil {
		t.Fatal(err)
	}
	info, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if h.tscKHz <= 0 {
		t.Fatalf("the host's TSC rate was not measured (%d kHz)", h.tscKHz)
	}
	lpj := h.tscKHz * 1000 / guestHZ
	want := fmt.Sprintf("%d.%02d", lpj/(500000/guestHZ), (lpj/(5000/guestHZ))%100) // the kernel's format
	bogo := regexp.MustCompile(`(?m)^bogomips\s*:\s*(\S+)$`).FindAllStringSubmatch(string(info), -1)
	if len(bogo) != 2 {
		t.Fatalf("%d bogomips lines in /proc/cpuinfo, want 2:\n%s", len(bogo), info)
	}
	for i, b := range bogo {
		if b[1] != want {
			t.Errorf("cpu %d: bogomips %s, want %s (lpj=%d preset; console: %s)", i, b[1], want, lpj, vm.ConsoleTail(spec.ConsoleLog, 5))
		}
	}
	con, err := os.ReadFile(spec.ConsoleLog)
	if err != nil {
		t.Fatal(err)
	}
	rate := fmt.Sprintf("tsc: Detected %d.%03d MHz ", h.tscKHz/1000, h.tscKHz%1000) // the kernel's format
	if !bytes.Contains(con, []byte(rate+"processor")) && !bytes.Contains(con, []byte(rate+"TSC")) {
		t.Errorf("the guest did not take the preset TSC rate (%q):\n%s", rate, grepLines(con, "tsc:"))
	}
	for _, calibrated := range []string{"reference calibration", "Unable to calibrate"} {
		if bytes.Contains(con, []byte(calibrated)) {
			t.Errorf("the guest calibrated its TSC at boot (%q):\n%s", calibrated, grepLines(con, "tsc:"))
		}
	}
	mhz := regexp.MustCompile(`(?m)^cpu MHz\s*:\s*(\S+)$`).FindStringSubmatch(string(info))
	if mhz == nil {
		t.Fatalf("no cpu MHz in /proc/cpuinfo:\n%s", info)
	}
	guest, _ := strconv.ParseFloat(mhz[1], 64)
	if host := float64(h.tscKHz) / 1000; guest < host*0.99 || guest > host*1.01 {
		t.Errorf("the guest's TSC runs at %.3f MHz, the host's was measured at %.3f MHz", guest, host)
	}
}

// grepLines is the lines of b that contain s.
func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
