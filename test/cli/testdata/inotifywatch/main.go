// Command inotifywatch prints one line per inotify event on the files it is given, like busybox
// inotifyd (which Debian's busybox-static lacks). The CLI tests copy it into a shared folder and
// run it in a container to see host edits arrive as inotify events in the guest.
package main

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	fd, err := unix.InotifyInit1(0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "inotify_init:", err)
		os.Exit(1)
	}
	names := map[int32]string{}
	for _, p := range os.Args[1:] {
		wd, err := unix.InotifyAddWatch(fd, p, unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_ATTRIB|unix.IN_CREATE)
		if err != nil {
			fmt.Fprintln(os.Stderr, "watch", p+":", err)
			os.Exit(1)
		}
		names[int32(wd)] = p
	}
	fmt.Println("watching")
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "read:", err)
			os.Exit(1)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			fmt.Printf("event %#x %s\n", ev.Mask, names[ev.Wd])
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
