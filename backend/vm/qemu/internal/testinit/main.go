//go:build linux

// Command testinit is a tiny PID 1 for booting test VMs without the real
// agent: it mounts /dev, /proc and /sys, loads /lib/modules in order, and
// serves yamux streams on the virtio-serial port skiff.agent. Each stream
// carries one line-based command:
//
//	echo TEXT           → TEXT
//	mount TAG DIR       → ok | error (virtiofs)
//	write PATH TEXT     → ok | error
//	read PATH           → contents | error
//	console N           → N bytes of numbered lines on /dev/console, then ok
//	poweroff            → powers the guest off
//	exit                → PID 1 exits (the kernel panics)
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

func logf(f string, a ...any) { fmt.Fprintf(os.Stderr, "testinit: "+f+"\n", a...) }

func main() {
	os.MkdirAll("/dev", 0o755)
	unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	unix.Mount("proc", "/proc", "proc", 0, "")
	unix.Mount("sysfs", "/sys", "sysfs", 0, "")
	if con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		os.Stderr = con
	}
	order, _ := os.ReadFile("/lib/modules/order")
	for _, m := range strings.Fields(string(order)) {
		f, err := os.Open("/lib/modules/" + m)
		if err != nil {
			logf("module %s: %v", m, err)
			continue
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
			logf("module %s: %v", m, err)
		}
		f.Close()
	}
	logf("modules loaded")
	var port string
	for i := 0; i < 200 && port == ""; i++ {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			if b, _ := os.ReadFile(n); strings.TrimSpace(string(b)) == agentproto.DefaultPortName {
				port = "/dev/" + filepath.Base(filepath.Dir(n))
			}
		}
		if port == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	f, err := os.OpenFile(port, os.O_RDWR, 0)
	if err != nil {
		logf("no agent port: %v", err)
		select {}
	}
	sess, err := yamux.Server(f, nil)
	if err != nil {
		logf("yamux: %v", err)
		select {}
	}
	logf("serving on %s", port)
	for {
		c, err := sess.Accept()
		if err != nil {
			logf("accept: %v", err)
			select {}
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	f := strings.Fields(strings.TrimSpace(line))
	if len(f) == 0 {
		return
	}
	reply := func(err error) {
		if err != nil {
			fmt.Fprintf(c, "error %v\n", err)
		} else {
			fmt.Fprintln(c, "ok")
		}
	}
	switch f[0] {
	case "echo":
		fmt.Fprintln(c, strings.Join(f[1:], " "))
	case "mount":
		os.MkdirAll(f[2], 0o755)
		reply(unix.Mount(f[1], f[2], "virtiofs", 0, ""))
	case "write":
		reply(os.WriteFile(f[1], []byte(strings.Join(f[2:], " ")), 0o644))
	case "read":
		b, err := os.ReadFile(f[1])
		if err != nil {
			reply(err)
			return
		}
		fmt.Fprintf(c, "%s\n", b)
	case "console":
		var n int
		fmt.Sscan(f[1], &n)
		con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
		if err != nil {
			reply(err)
			return
		}
		w := bufio.NewWriterSize(con, 64<<10)
		for i, done := 0, 0; done < n; i++ {
			k, _ := fmt.Fprintf(w, "console line %07d\n", i)
			done += k
		}
		err = w.Flush()
		con.Close()
		reply(err)
	case "poweroff":
		fmt.Fprintln(c, "ok")
		c.Close()
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case "exit":
		fmt.Fprintln(c, "ok")
		c.Close()
		time.Sleep(50 * time.Millisecond)
		os.Exit(3)
	}
}
