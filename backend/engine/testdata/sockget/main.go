// Command sockget sends an HTTP/1.0 GET for a path over a unix socket and prints the answer: the
// client side of the Docker socket test, run inside a container (busybox has no unix socket client).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sockget SOCKET PATH")
		os.Exit(2)
	}
	c, err := net.Dial("unix", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: docker\r\n\r\n", os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := io.Copy(os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
