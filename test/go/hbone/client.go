package main

// The CONNECT client: one TLS connection, K concurrent CONNECT (or POST with
// x-tun) streams over it, each moving N bytes, with SHA-256 over what was sent
// and what came back. Prints one JSON line:
//
//	{"status":200,"streams":K,"ok":K,"sent":..,"received":..,"sha_sent":..,"sha_received":..,"ms":..,"mib_per_s":..}
//
// Modes (what the upstream behind the proxy does):
//
//	echo      send N bytes, half-close, read everything back; sha_sent must equal sha_received
//	upload    send N bytes, half-close, read until the upstream closes (a sink)
//	download  send nothing, half-close, read until the upstream closes (a source)
//	status    only open the stream and report the response status

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

type streamResult struct {
	Status      int    `json:"status"`
	Sent        int64  `json:"sent"`
	Received    int64  `json:"received"`
	ShaSent     string `json:"sha_sent"`
	ShaReceived string `json:"sha_received"`
	Error       string `json:"error,omitempty"`
}

func clientMain(args []string) int {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "proxy address host:port")
	authority := fs.String("authority", "", "CONNECT authority host:port")
	servername := fs.String("servername", "localhost", "TLS server name of the proxy")
	cert := fs.String("cert", "", "client certificate (PEM)")
	key := fs.String("key", "", "client key (PEM)")
	ca := fs.String("ca", "", "CA bundle that signed the proxy's certificate")
	mode := fs.String("mode", "echo", "echo | upload | download | status")
	method := fs.String("method", "CONNECT", "CONNECT | POST (POST sends x-tun)")
	size := fs.Int64("bytes", 1<<20, "bytes per stream")
	streams := fs.Int("streams", 1, "concurrent streams over one connection")
	timeout := fs.Duration("timeout", 120*time.Second, "overall deadline")
	var headers headerList
	fs.Var(&headers, "H", "extra request header 'name: value' (repeatable)")
	fs.Parse(args)

	cfg, err := tlsConfig(*cert, *key, *ca)
	if err != nil {
		return fail(err)
	}
	cfg.ServerName = *servername
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", *addr)
	if err != nil {
		return fail(err)
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return fail(fmt.Errorf("TLS handshake: %w", err))
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		return fail(fmt.Errorf("ALPN: server chose %q, want h2", p))
	}
	tr := &http2.Transport{}
	cc, err := tr.NewClientConn(conn)
	if err != nil {
		return fail(err)
	}
	defer cc.Close()

	started := time.Now()
	results := make([]streamResult, *streams)
	var wg sync.WaitGroup
	for i := 0; i < *streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = runStream(ctx, cc, *method, *authority, headers, *mode, *size, int64(i+1))
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(started)

	out := map[string]any{"streams": *streams, "ms": elapsed.Milliseconds()}
	var sent, received int64
	ok := 0
	for _, r := range results {
		sent += r.Sent
		received += r.Received
		if r.Error == "" && r.Status == 200 {
			ok++
		}
	}
	out["status"] = results[0].Status
	out["ok"] = ok
	out["sent"] = sent
	out["received"] = received
	out["sha_sent"] = results[0].ShaSent
	out["sha_received"] = results[0].ShaReceived
	moved := sent
	if received > moved {
		moved = received
	}
	out["mib_per_s"] = float64(moved) / (1 << 20) / elapsed.Seconds()
	var errs []string
	mismatch := 0
	for _, r := range results {
		if r.Error != "" {
			errs = append(errs, r.Error)
		}
		if *mode == "echo" && r.Status == 200 && r.ShaSent != r.ShaReceived {
			mismatch++
		}
	}
	out["mismatched"] = mismatch
	if len(errs) > 0 {
		if len(errs) > 5 {
			errs = errs[:5]
		}
		out["errors"] = errs
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return 0
}

func runStream(ctx context.Context, cc *http2.ClientConn, method, authority string, headers []string, mode string, size, seed int64) streamResult {
	pr, pw := io.Pipe()
	req := &http.Request{
		Method: method,
		Host:   authority,
		URL:    &url.URL{Host: authority},
		Header: http.Header{},
		Body:   pr,
		// -1: unknown length, so the body is streamed and END_STREAM comes at Close.
		ContentLength: -1,
	}
	if method == "POST" {
		// The POST form of a tunnel for middleboxes that only pass POST.
		req.URL = &url.URL{Scheme: "https", Host: authority, Path: "/"}
		req.Header.Set("x-tun", authority)
	}
	for _, h := range headers {
		if i := strings.IndexByte(h, ':'); i > 0 {
			req.Header.Add(strings.TrimSpace(h[:i]), strings.TrimSpace(h[i+1:]))
		}
	}
	req = req.WithContext(ctx)
	var r streamResult
	if mode == "status" {
		pw.Close()
	}
	res, err := cc.RoundTrip(req)
	if err != nil {
		pw.CloseWithError(err)
		r.Error = err.Error()
		return r
	}
	defer res.Body.Close()
	r.Status = res.StatusCode
	if res.StatusCode != 200 || mode == "status" {
		pw.Close()
		io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
		return r
	}
	// Hashing costs more CPU than the relay under test: only echo checks it.
	var sendHash, recvHash hash.Hash = nullHash{}, nullHash{}
	if mode == "echo" {
		sendHash, recvHash = sha256.New(), sha256.New()
	}
	writeErr := make(chan error, 1)
	go func() {
		var err error
		if mode == "echo" || mode == "upload" {
			err = sendPattern(pw, sendHash, size, seed)
			r.Sent = size
		}
		pw.Close()
		writeErr <- err
	}()
	n, err := io.CopyBuffer(recvHash, res.Body, make([]byte, 256<<10))
	r.Received = n
	if err != nil {
		r.Error = "reading: " + err.Error()
	}
	if werr := <-writeErr; werr != nil && r.Error == "" {
		r.Error = "writing: " + werr.Error()
	}
	if mode == "echo" {
		r.ShaSent = hex.EncodeToString(sendHash.Sum(nil))
		r.ShaReceived = hex.EncodeToString(recvHash.Sum(nil))
	}
	return r
}

// sendPattern writes size pseudo-random bytes (seeded, so each stream differs).
func sendPattern(w io.Writer, h io.Writer, size, seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	buf := make([]byte, 256<<10)
	rng.Read(buf)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		// Vary each block cheaply so reordered blocks would change the hash.
		buf[0] ^= byte(left)
		buf[1] ^= byte(left >> 8)
		h.Write(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// nullHash discards: the benchmark modes do not check content.
type nullHash struct{}

func (nullHash) Write(p []byte) (int, error) { return len(p), nil }
func (nullHash) Sum(b []byte) []byte         { return b }
func (nullHash) Reset()                      {}
func (nullHash) Size() int                   { return 0 }
func (nullHash) BlockSize() int              { return 64 }

func fail(err error) int {
	b, _ := json.Marshal(map[string]any{"status": 0, "error": err.Error()})
	fmt.Println(string(b))
	return 1
}
