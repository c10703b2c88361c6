// Command udpecho answers each UDP datagram on 0.0.0.0:PORT with "<payload> from <sender>", so a
// test sees which source address the datagram arrived from. It stands in for `nc -u -l`, which
// Debian's busybox-static lacks. Built static by the engine tests and copied into a container's rootfs.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: udpecho PORT")
		os.Exit(2)
	}
	pc, err := net.ListenPacket("udp", ":"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s from %s", buf[:n], from)), from)
	}
}
