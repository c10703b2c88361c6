// Command inotifywatch prints the inotify events of a directory, one line each: "<EVENT> <name>",
// EVENT one of CREATE, MODIFY, ATTRIB, CLOSE_WRITE, DELETE, MOVED. It stands in for busybox's
// inotifyd, which Debian's busybox-static leaves out. Built static by the engine tests and copied
// into a container's rootfs.
package main

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: inotifywatch DIR")
		os.Exit(2)
	}
	fd, err := unix.InotifyInit1(0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := unix.InotifyAddWatch(fd, os.Args[1], unix.IN_CREATE|unix.IN_MODIFY|unix.IN_ATTRIB|
		unix.IN_CLOSE_WRITE|unix.IN_DELETE|unix.IN_MOVED_TO); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("watching", os.Args[1])
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			for _, k := range []struct {
				m uint32
				s string
			}{{unix.IN_CREATE, "CREATE"}, {unix.IN_MODIFY, "MODIFY"}, {unix.IN_ATTRIB, "ATTRIB"},
				{unix.IN_CLOSE_WRITE, "CLOSE_WRITE"}, {unix.IN_DELETE, "DELETE"}, {unix.IN_MOVED_TO, "MOVED"}} {
				if ev.Mask&k.m != 0 {
					fmt.Println(k.s, name)
				}
			}
		}
	}
}
