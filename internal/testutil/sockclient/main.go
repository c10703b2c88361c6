// Command sockclient is the client side of the socket tests, run inside a container (busybox has
// no unix socket client). It connects to a unix socket, sends a request and prints the answer:
//
//	sockclient SOCKET MESSAGE    sends MESSAGE and half-closes (an echo server answers at EOF)
//	sockclient -get SOCKET PATH  sends an HTTP/1.0 GET for PATH (the server closes after answering)
//
// testutil.BuildSockClient builds it for a test.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	get := flag.Bool("get", false, "send an HTTP/1.0 GET for the second argument instead of the argument itself")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sockclient SOCKET MESSAGE | sockclient -get SOCKET PATH")
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *get); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(socket, arg string, get bool) error {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if get {
		// No half-close: an HTTP server may take the read side's EOF for a client gone away.
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: docker\r\n\r\n", arg); err != nil {
			return err
		}
	} else {
		if _, err := io.WriteString(c, arg); err != nil {
			return err
		}
		if err := c.(*net.UnixConn).CloseWrite(); err != nil {
			return err
		}
	}
	_, err = io.Copy(os.Stdout, c)
	return err
}
