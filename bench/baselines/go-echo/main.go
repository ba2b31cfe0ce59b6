// Go baseline: what a Go user writes for a TCP echo, a goroutine per connection and io.Copy.
// Go sets TCP_NODELAY on every TCP connection by default (net.TCPConn.SetNoDelay); the runtime's netpoller is
// epoll underneath. usage: go-echo PORT [HOST]
package main

import (
	"io"
	"net"
	"os"
)

func main() {
	host := "127.0.0.1"
	if len(os.Args) > 2 {
		host = os.Args[2]
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, os.Args[1]))
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() { io.Copy(c, c); c.Close() }()
	}
}
