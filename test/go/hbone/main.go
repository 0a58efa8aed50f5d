// Command hbone is edgemux's HTTP/2 CONNECT (HBONE) interop and benchmark
// peer, built offline against Debian's golang-golang-x-net-dev:
//
//	hbone client ...   an x/net/http2 CONNECT client with a client certificate
//	hbone server ...   an x/net/http2 CONNECT relay (the Go baseline for benches)
//
// Both speak TLS 1.3 with ALPN h2 only. See client.go and server.go for flags.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hbone client|server [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "client":
		os.Exit(clientMain(os.Args[2:]))
	case "server":
		os.Exit(serverMain(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "hbone: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// tlsConfig loads a certificate pair and a CA bundle. The CA verifies the
// peer: the server's certificate on the client, client certificates on the server.
func tlsConfig(certPath, keyPath, caPath string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"}}
	if certPath != "" {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("loading %s / %s: %w", certPath, keyPath, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if caPath != "" {
		pem, err := os.ReadFile(caPath)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates found", caPath)
		}
		cfg.RootCAs = pool
		cfg.ClientCAs = pool
	}
	return cfg, nil
}
