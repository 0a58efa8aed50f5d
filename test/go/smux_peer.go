// smux_peer is the Go side of edgemux's smux interop tests and bulk benchmark.
// It uses github.com/xtaci/smux as packaged by Debian; build it with
// scripts/build_go_peers.sh (GOPATH mode, Go 1.19, offline).
//
// Modes (all print one line of JSON, or "LISTEN host:port" first for servers):
//
//	echo-server   accept sessions; echo every stream until EOF, then Close it
//	echo-client   open -streams streams; send random data (sizes up to -max-size,
//	              or exactly -bytes each), read the echo, compare SHA-256
//	sink-server   accept sessions; per stream read an 8-byte LE length, then that
//	              many bytes, answer one byte, Close
//	source-client open one stream, send the 8-byte length and -bytes bytes, wait
//	              for the answer; report the seconds it took
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"sync"
	"time"

	"github.com/xtaci/smux"
)

var (
	mode     = flag.String("mode", "", "echo-server | echo-client | sink-server | source-client")
	listen   = flag.String("listen", "127.0.0.1:0", "listen address (servers)")
	connect  = flag.String("connect", "", "address to dial (clients)")
	version  = flag.Int("version", 2, "smux protocol version (1 or 2)")
	streams  = flag.Int("streams", 1000, "streams to open (echo-client)")
	maxSize  = flag.Int("max-size", 128*1024, "largest random stream size (echo-client)")
	total    = flag.Int64("bytes", 0, "bytes per stream (echo-client: fixed size instead of random; source-client: payload)")
	seed     = flag.Int64("seed", 1, "random seed (echo-client)")
	frame    = flag.Int("max-frame", 32768, "MaxFrameSize")
	recvBuf  = flag.Int("max-receive-buffer", 4194304, "MaxReceiveBuffer")
	strBuf   = flag.Int("max-stream-buffer", 65536, "MaxStreamBuffer")
	deadline = flag.Duration("timeout", 5*time.Minute, "give up after this long")
)

func config() *smux.Config {
	c := smux.DefaultConfig()
	c.Version = *version
	c.MaxFrameSize = *frame
	c.MaxReceiveBuffer = *recvBuf
	c.MaxStreamBuffer = *strBuf
	if err := smux.VerifyConfig(c); err != nil {
		fail(err)
	}
	return c
}

func fail(err error) {
	out, _ := json.Marshal(map[string]interface{}{"ok": false, "error": err.Error()})
	fmt.Println(string(out))
	os.Exit(1)
}

func report(v map[string]interface{}) {
	v["ok"] = true
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
}

func main() {
	flag.Parse()
	time.AfterFunc(*deadline, func() { fail(fmt.Errorf("timed out after %v", *deadline)) })
	switch *mode {
	case "echo-server":
		serve(echoStream)
	case "sink-server":
		serve(sinkStream)
	case "echo-client":
		echoClient()
	case "source-client":
		sourceClient()
	default:
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}
}

func serve(handle func(*smux.Stream)) {
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(err)
	}
	fmt.Printf("LISTEN %s\n", ln.Addr().String())
	// The parent closes our stdin to stop us.
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			fail(err)
		}
		go func() {
			sess, err := smux.Server(conn, config())
			if err != nil {
				fail(err)
			}
			for {
				s, err := sess.AcceptStream()
				if err != nil {
					return
				}
				go handle(s)
			}
		}()
	}
}

func echoStream(s *smux.Stream) {
	io.Copy(s, s)
	s.Close()
}

func sinkStream(s *smux.Stream) {
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		s.Close()
		return
	}
	n := int64(binary.LittleEndian.Uint64(hdr[:]))
	if _, err := io.CopyN(io.Discard, s, n); err != nil {
		s.Close()
		return
	}
	s.Write([]byte{1})
	s.Close()
}

func dial() *smux.Session {
	conn, err := net.Dial("tcp", *connect)
	if err != nil {
		fail(err)
	}
	sess, err := smux.Client(conn, config())
	if err != nil {
		fail(err)
	}
	return sess
}

// patternReader yields a deterministic pseudo-random byte stream without holding it all.
type patternReader struct {
	rng  *rand.Rand
	left int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	p.rng.Read(b)
	p.left -= int64(len(b))
	return len(b), nil
}

func echoClient() {
	sess := dial()
	rng := rand.New(rand.NewSource(*seed))
	sizes := make([]int64, *streams)
	for i := range sizes {
		if *total > 0 {
			sizes[i] = *total
		} else {
			sizes[i] = int64(rng.Intn(*maxSize + 1))
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, *streams)
	var sum int64
	for i, size := range sizes {
		sum += size
		wg.Add(1)
		go func(i int, size int64) {
			defer wg.Done()
			if err := echoOne(sess, *seed+int64(i), size); err != nil {
				errs <- fmt.Errorf("stream %d (%d bytes): %w", i, size, err)
			}
		}(i, size)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail(err)
	}
	sess.Close()
	report(map[string]interface{}{"streams": *streams, "bytes": sum, "seconds": time.Since(start).Seconds()})
}

func echoOne(sess *smux.Session, seed int64, size int64) error {
	s, err := sess.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		src := io.TeeReader(&patternReader{rng: rand.New(rand.NewSource(seed)), left: size}, sent)
		_, err := io.Copy(struct{ io.Writer }{s}, bufio.NewReaderSize(src, 64*1024))
		werr <- err
	}()
	got := sha256.New()
	if _, err := io.CopyN(got, s, size); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		return fmt.Errorf("echo differs: sha256 sent %x, received %x", sent.Sum(nil), got.Sum(nil))
	}
	return nil
}

func sourceClient() {
	sess := dial()
	s, err := sess.OpenStream()
	if err != nil {
		fail(err)
	}
	buf := make([]byte, 64*1024)
	rand.New(rand.NewSource(1)).Read(buf)
	start := time.Now()
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(*total))
	if _, err := s.Write(hdr[:]); err != nil {
		fail(err)
	}
	for left := *total; left > 0; {
		n := int64(len(buf))
		if n > left {
			n = left
		}
		if _, err := s.Write(buf[:n]); err != nil {
			fail(err)
		}
		left -= n
	}
	var ack [1]byte
	if _, err := io.ReadFull(s, ack[:]); err != nil {
		fail(fmt.Errorf("waiting for the answer: %w", err))
	}
	secs := time.Since(start).Seconds()
	s.Close()
	sess.Close()
	report(map[string]interface{}{"bytes": *total, "seconds": secs})
}
