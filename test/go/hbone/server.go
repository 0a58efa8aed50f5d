package main

// The Go baseline relay: an x/net/http2 server over TLS 1.3 with client
// certificates required, answering CONNECT host:port (and POST with x-tun) by
// dialing the authority and copying bytes both ways. Flow-control windows as
// ztunnel sizes them: 4 MiB per stream, 16 MiB per connection.
//
//	hbone server -listen 127.0.0.1:0 -cert C -key K -ca CA
//
// Prints {"ready":true,"port":N} once listening.

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

func serverMain(args []string) int {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	cert := fs.String("cert", "", "server certificate (PEM)")
	key := fs.String("key", "", "server key (PEM)")
	ca := fs.String("ca", "", "CA that signs client certificates")
	fs.Parse(args)

	cfg, err := tlsConfig(*cert, *key, *ca)
	if err != nil {
		return fail(err)
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", *listen, cfg)
	if err != nil {
		return fail(err)
	}
	h2 := &http2.Server{
		MaxConcurrentStreams:         1000,
		MaxUploadBufferPerStream:     4 << 20,
		MaxUploadBufferPerConnection: 16 << 20,
		MaxReadFrameSize:             1 << 20,
	}
	b, _ := json.Marshal(map[string]any{"ready": true, "port": ln.Addr().(*net.TCPAddr).Port})
	fmt.Println(string(b))
	for {
		c, err := ln.Accept()
		if err != nil {
			return fail(err)
		}
		go func() {
			// ServeConn reads the negotiated TLS state: finish the handshake first.
			if err := c.(*tls.Conn).Handshake(); err != nil {
				c.Close()
				return
			}
			h2.ServeConn(c, &http2.ServeConnOpts{Handler: http.HandlerFunc(relay)})
		}()
	}
}

func relay(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	if r.Method == "POST" && r.Header.Get("x-tun") != "" {
		target = r.Header.Get("x-tun")
	} else if r.Method != "CONNECT" {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	defer up.Close()
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	flusher.Flush()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.CopyBuffer(up, r.Body, make([]byte, 256<<10))
		up.(*net.TCPConn).CloseWrite()
	}()
	buf := make([]byte, 256<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			flusher.Flush()
		}
		if err != nil {
			break
		}
	}
	wg.Wait()
}
