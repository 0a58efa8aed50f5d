// A Go net/http client for test/http_interop_test.ts: talks to edgemux's
// http listener over HTTPS, with HTTP/2 (ALPN h2, the standard library's
// bundled implementation) or HTTP/1.1 only, on one connection per run.
//
//	httpclient -url https://app.test:PORT -connect 127.0.0.1:PORT -ca ca.crt -proto h2|http/1.1 -gets 20 -post 67108864
//
// It does -gets GETs of /get/<i> (each body must name its path), then one
// POST of -post pseudo-random bytes to /sha256, streamed from a generator
// (never held whole), and checks the SHA-256 the backend computed against
// its own. Prints one JSON line: the protocol each response came with, how
// many connections were dialed, and the checksums.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// hashingReader yields n pseudo-random bytes and hashes what it yields.
type hashingReader struct {
	rng  *rand.Rand
	left int64
	h    hashWriter
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func (r *hashingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, _ := r.rng.Read(p)
	r.h.Write(p[:n])
	r.left -= int64(n)
	return n, nil
}

func main() {
	base := flag.String("url", "", "https://host:port")
	connectTo := flag.String("connect", "", "address to dial instead of the URL's host")
	caPath := flag.String("ca", "", "CA certificate (PEM)")
	proto := flag.String("proto", "h2", "h2 or http/1.1")
	gets := flag.Int("gets", 10, "GETs to send")
	post := flag.Int64("post", 0, "bytes to POST to /sha256")
	flag.Parse()

	pem, err := os.ReadFile(*caPath)
	if err != nil {
		fail("read ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", *caPath)
	}
	var dials int32
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: []string{*proto}},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			atomic.AddInt32(&dials, 1)
			return dialer.DialContext(ctx, network, *connectTo)
		},
		MaxConnsPerHost: 1,
	}
	if *proto == "h2" {
		// A custom TLS config turns HTTP/2 off unless asked for.
		tr.ForceAttemptHTTP2 = true
	} else {
		// A non-nil empty map keeps the transport from upgrading to HTTP/2.
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	client := &http.Client{Transport: tr, Timeout: 120 * time.Second}

	protos := map[string]int{}
	for i := 0; i < *gets; i++ {
		path := fmt.Sprintf("/get/%d", i)
		resp, err := client.Get(*base + path)
		if err != nil {
			fail("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			fail("GET %s body: %v", path, err)
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), path) {
			fail("GET %s: %d %s", path, resp.StatusCode, body)
		}
		protos[resp.Proto]++
	}

	out := map[string]interface{}{"protos": protos}
	if *post > 0 {
		src := &hashingReader{rng: rand.New(rand.NewSource(7)), left: *post, h: sha256.New()}
		req, err := http.NewRequest("POST", *base+"/sha256", src)
		if err != nil {
			fail("POST: %v", err)
		}
		req.ContentLength = *post
		resp, err := client.Do(req)
		if err != nil {
			fail("POST: %v", err)
		}
		var got struct {
			Sha256 string `json:"sha256"`
			Bytes  int64  `json:"bytes"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			fail("POST answer: %v", err)
		}
		resp.Body.Close()
		protos[resp.Proto]++
		out["post_sent_sha256"] = hex.EncodeToString(src.h.Sum(nil))
		out["post_seen_sha256"] = got.Sha256
		out["post_seen_bytes"] = got.Bytes
	}
	out["dials"] = atomic.LoadInt32(&dials)
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
