// tunnel_client is a second, independent implementation of the edgemux tunnel
// protocol, in Go, for the interop test (test/tunnel_go_interop_test.ts): it
// proves the protocol is open to other implementations. It uses
// github.com/xtaci/smux (Debian golang-github-xtaci-smux-dev) and a few lines
// of hand-written msgpack; build it in GOPATH mode with Go 1.19, offline:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o tunnel_client ./test/go/tunnel
//
// It dials the edge over TLS, sends the HTTP/1.1 upgrade (Upgrade:
// edgemux-smux/2, Authorization: Bearer), runs an smux v2 client session,
// opens the control stream, sends hello and waits for welcome. Then:
//
//	-mode destination  expose -service; echo every stream the edge opens
//	                   (after reading its open request and answering ok)
//	-mode source       open -streams streams to -service, send -bytes random
//	                   bytes on each, half-close, read the echo, compare SHA-256
//
// Prints "READY <session>" after welcome, and for source one JSON line.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/xtaci/smux"
)

var (
	edge     = flag.String("edge", "", "edge tunnel listener host:port")
	caFile   = flag.String("ca", "", "CA certificate (PEM) that signs the edge's certificate")
	sni      = flag.String("servername", "localhost", "TLS server name")
	token    = flag.String("token", "", "bearer token")
	mode     = flag.String("mode", "destination", "destination | source")
	service  = flag.String("service", "go-echo", "service name")
	agent    = flag.String("agent", "go-agent", "agent name")
	nStreams = flag.Int("streams", 10, "streams to open (source)")
	nBytes   = flag.Int("bytes", 100000, "bytes per stream (source)")
)

// ---- minimal msgpack: maps with string keys; strings, ints, arrays, maps ----

func packStr(b *bytes.Buffer, s string) {
	n := len(s)
	switch {
	case n < 32:
		b.WriteByte(0xa0 | byte(n))
	case n < 256:
		b.WriteByte(0xd9)
		b.WriteByte(byte(n))
	default:
		b.WriteByte(0xda)
		binary.Write(b, binary.BigEndian, uint16(n))
	}
	b.WriteString(s)
}

func pack(b *bytes.Buffer, v interface{}) {
	switch x := v.(type) {
	case string:
		packStr(b, x)
	case int:
		if x >= 0 && x < 128 {
			b.WriteByte(byte(x))
		} else {
			b.WriteByte(0xd2)
			binary.Write(b, binary.BigEndian, int32(x))
		}
	case []interface{}:
		b.WriteByte(0x90 | byte(len(x)))
		for _, e := range x {
			pack(b, e)
		}
	case map[string]interface{}:
		b.WriteByte(0x80 | byte(len(x)))
		for k, e := range x {
			packStr(b, k)
			pack(b, e)
		}
	default:
		panic(fmt.Sprintf("pack: %T", v))
	}
}

type reader struct {
	b []byte
	i int
}

func (r *reader) n(k int) []byte {
	if r.i+k > len(r.b) {
		panic("msgpack: short")
	}
	s := r.b[r.i : r.i+k]
	r.i += k
	return s
}

func (r *reader) value() interface{} {
	c := r.n(1)[0]
	switch {
	case c <= 0x7f:
		return int(c)
	case c >= 0xe0:
		return int(int8(c))
	case c&0xf0 == 0x80:
		return r.mapN(int(c & 0x0f))
	case c&0xf0 == 0x90:
		return r.arrN(int(c & 0x0f))
	case c&0xe0 == 0xa0:
		return string(r.n(int(c & 0x1f)))
	}
	switch c {
	case 0xc0:
		return nil
	case 0xc2:
		return false
	case 0xc3:
		return true
	case 0xcc:
		return int(r.n(1)[0])
	case 0xcd:
		return int(binary.BigEndian.Uint16(r.n(2)))
	case 0xce:
		return int(binary.BigEndian.Uint32(r.n(4)))
	case 0xd0:
		return int(int8(r.n(1)[0]))
	case 0xd1:
		return int(int16(binary.BigEndian.Uint16(r.n(2))))
	case 0xd2:
		return int(int32(binary.BigEndian.Uint32(r.n(4))))
	case 0xd9:
		return string(r.n(int(r.n(1)[0])))
	case 0xda:
		return string(r.n(int(binary.BigEndian.Uint16(r.n(2)))))
	case 0xdc:
		return r.arrN(int(binary.BigEndian.Uint16(r.n(2))))
	case 0xde:
		return r.mapN(int(binary.BigEndian.Uint16(r.n(2))))
	}
	panic(fmt.Sprintf("msgpack: type 0x%02x", c))
}

func (r *reader) mapN(n int) map[string]interface{} {
	m := map[string]interface{}{}
	for k := 0; k < n; k++ {
		key, _ := r.value().(string)
		m[key] = r.value()
	}
	return m
}

func (r *reader) arrN(n int) []interface{} {
	a := make([]interface{}, n)
	for k := range a {
		a[k] = r.value()
	}
	return a
}

// writeMsg frames one message: length u32 BE | msgpack map.
func writeMsg(w io.Writer, m map[string]interface{}) error {
	var body bytes.Buffer
	pack(&body, m)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(body.Len()))
	_, err := w.Write(append(hdr[:], body.Bytes()...))
	return err
}

func readMsg(r io.Reader) (m map[string]interface{}, err error) {
	var hdr [4]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > 65536 {
		return nil, fmt.Errorf("message length %d", n)
	}
	body := make([]byte, n)
	if _, err = io.ReadFull(r, body); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	v := (&reader{b: body}).value()
	mm, ok := v.(map[string]interface{})
	if !ok {
		return nil, errors.New("message is not a map")
	}
	return mm, nil
}

// ---- connection ----

// bufConn reads through the bufio.Reader that parsed the HTTP response, so
// smux frames that arrived with the 101 are not lost.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "tunnel_client: "+format+"\n", a...)
	os.Exit(1)
}

func dial() (*smux.Session, *smux.Stream) {
	pool := x509.NewCertPool()
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fail("%v", err)
		}
		pool.AppendCertsFromPEM(pem)
	}
	conn, err := tls.Dial("tcp", *edge, &tls.Config{ServerName: *sni, RootCAs: pool})
	if err != nil {
		fail("dial: %v", err)
	}
	req := "GET /edgemux/tunnel HTTP/1.1\r\nHost: " + *sni + "\r\nConnection: Upgrade\r\nUpgrade: edgemux-smux/2\r\n"
	if *token != "" {
		req += "Authorization: Bearer " + *token + "\r\n"
	}
	req += "User-Agent: edgemux-go-interop\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		fail("upgrade write: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		fail("upgrade read: %v", err)
	}
	if resp.StatusCode != 101 {
		fail("upgrade refused: %d %s (Edgemux-Error %s: %s)", resp.StatusCode, resp.Status, resp.Header.Get("Edgemux-Error"), resp.Header.Get("Edgemux-Reason"))
	}
	cfg := smux.DefaultConfig()
	cfg.Version = 2
	sess, err := smux.Client(bufConn{conn, br}, cfg)
	if err != nil {
		fail("smux: %v", err)
	}
	ctl, err := sess.OpenStream()
	if err != nil {
		fail("control stream: %v", err)
	}
	roles := []interface{}{"destination"}
	services := []interface{}{map[string]interface{}{"name": *service, "proto": "tcp"}}
	if *mode == "source" {
		roles = []interface{}{"source"}
		services = []interface{}{}
	}
	hello := map[string]interface{}{"type": "hello", "version": 1, "agent": *agent, "roles": roles, "services": services}
	if err := writeMsg(ctl, hello); err != nil {
		fail("hello: %v", err)
	}
	w, err := readMsg(ctl)
	if err != nil {
		fail("welcome: %v", err)
	}
	if w["type"] != "welcome" {
		fail("edge answered %v", w)
	}
	fmt.Printf("READY %v\n", w["session"])
	return sess, ctl
}

func destination(sess *smux.Session) {
	for {
		s, err := sess.AcceptStream()
		if err != nil {
			fail("accept: %v", err)
		}
		go func(s *smux.Stream) {
			defer s.Close()
			open, err := readMsg(s)
			if err != nil || open["type"] != "open" || open["service"] != *service {
				writeMsg(s, map[string]interface{}{"type": "error", "code": 20, "message": fmt.Sprintf("go agent cannot serve %v", open["service"])})
				return
			}
			if err := writeMsg(s, map[string]interface{}{"type": "ok"}); err != nil {
				return
			}
			io.Copy(s, s)
		}(s)
	}
}

func source(sess *smux.Session) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	okCount := 0
	var firstErr string
	start := time.Now()
	for i := 0; i < *nStreams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				s, err := sess.OpenStream()
				if err != nil {
					return err
				}
				defer s.Close()
				if err := writeMsg(s, map[string]interface{}{"type": "open", "service": *service, "proto": "tcp", "client": "", "server": "", "proxy": "none"}); err != nil {
					return err
				}
				ans, err := readMsg(s)
				if err != nil {
					return err
				}
				if ans["type"] != "ok" {
					return fmt.Errorf("open refused: %v", ans)
				}
				data := make([]byte, *nBytes)
				rand.Read(data)
				want := sha256.Sum256(data)
				// Go smux has no half-close (Close ends both ways): read the whole echo, then Close.
				done := make(chan error, 1)
				go func() {
					got := make([]byte, len(data))
					if _, err := io.ReadFull(s, got); err != nil {
						done <- err
						return
					}
					if sum := sha256.Sum256(got); !bytes.Equal(sum[:], want[:]) {
						done <- errors.New("echo mismatch")
						return
					}
					done <- nil
				}()
				if _, err := s.Write(data); err != nil {
					return err
				}
				return <-done
			}()
			mu.Lock()
			if err == nil {
				okCount++
			} else if firstErr == "" {
				firstErr = err.Error()
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out, _ := json.Marshal(map[string]interface{}{"ok": okCount == *nStreams, "streams": okCount, "error": firstErr, "seconds": time.Since(start).Seconds()})
	fmt.Println(string(out))
	sess.Close()
}

func main() {
	flag.Parse()
	if *edge == "" {
		fail("-edge is required")
	}
	sess, _ := dial()
	if strings.EqualFold(*mode, "source") {
		source(sess)
		return
	}
	destination(sess)
}
