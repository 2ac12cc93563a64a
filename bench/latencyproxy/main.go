// Command latencyproxy is the benchmark's stand-in for netem (this kernel
// has none): a TCP proxy that delays every byte by a fixed time in each
// direction and counts the round trips of every connection.
//
//	latencyproxy -delay 12.5ms -log rt.log -route h1,127.85.0.1:2222,127.80.0.1:22 [-route ...]
//
// Each -route NAME,LISTEN,TARGET listens on LISTEN and forwards every
// accepted connection to TARGET. Data read from either side is written to
// the other side `delay` after it was read (order kept, reads never wait
// for writes), so a request/response exchange costs 2×delay more than
// without the proxy. When every listener is up it prints "ready" on stdout.
//
// A round trip is a client→server burst answered by a server→client burst:
// the proxy notes the direction of every read, in the order the reads
// happen, and counts the changes of direction from client→server to
// server→client. (That is the number of direction changes divided by two,
// rounded by the direction the connection starts with.) Server data read
// after the client closed its side answers nothing: the client did not
// wait for it (opsmop sends its channel close and ends without waiting
// for sshd's reply). With -ssh the server's version banner and its first
// packet (KEXINIT) never answer a round trip: RFC 4253 lets both sides
// send them without waiting for each other (4.2, 7.1), so whether they
// arrive in one burst, or before or after the client's, must not change
// the count; the proxy reads the banner line and the packet's length
// field (both sent in clear) to know where they end. Before this, a
// KEXINIT that came apart from the banner, and sshd's reply to the final
// close, each added one to some runs under load.
// the count. Each connection is
// logged as one line when it ends, and those still open are logged when
// the proxy gets SIGTERM or SIGINT, after which it exits 0:
//
//	conn=3 route=h1 client=127.0.0.1:41234 state=closed round_trips=7 direction_changes=15 c2s_bytes=3141 s2c_bytes=5926 c2s_reads=12 s2c_reads=14 seconds=0.512
//
// With -bursts the line ends with every burst in order, as
// `bursts=c120@0.000,s300@0.013,...`: direction (c = client→server,
// s = server→client), bytes, and seconds since the connection started.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// route is one listener and where its connections go.
type route struct {
	name, listen, target string
}

// routeFlags collects repeated -route flags.
type routeFlags []route

func (r *routeFlags) String() string { return fmt.Sprint(*r) }

// Set parses NAME,LISTEN,TARGET.
func (r *routeFlags) Set(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return fmt.Errorf("route %q: want NAME,LISTEN_ADDR:PORT,TARGET_ADDR:PORT", s)
	}
	*r = append(*r, route{name: parts[0], listen: parts[1], target: parts[2]})
	return nil
}

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("latencyproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	delay := fs.Duration("delay", 0, "added delay per direction (the round trip grows by twice this)")
	logPath := fs.String("log", "", "file the per-connection lines are appended to (required)")
	bursts := fs.Bool("bursts", false, "also log every burst (direction, bytes, time)")
	sshMode := fs.Bool("ssh", false, "SSH: the server's version banner and first packet (KEXINIT), which it sends without waiting, are not the answer of a round trip")
	var routes routeFlags
	fs.Var(&routes, "route", "NAME,LISTEN,TARGET (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *logPath == "" || len(routes) == 0 || *delay < 0 {
		fmt.Fprintln(stderr, "latencyproxy: need -log FILE, at least one -route NAME,LISTEN,TARGET and a -delay >= 0")
		return 2
	}
	logf, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "latencyproxy: %v\n", err)
		return 1
	}
	defer logf.Close()
	p := newProxy(*delay, logf)
	p.bursts = *bursts
	p.ssh = *sshMode
	for _, r := range routes {
		if err := p.listen(ctx, r); err != nil {
			p.shutdown()
			fmt.Fprintf(stderr, "latencyproxy: %v\n", err)
			return 1
		}
	}
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	p.shutdown()
	return 0
}

// proxy forwards the connections of its listeners with a delay and logs
// each connection's counts.
type proxy struct {
	delay  time.Duration
	log    io.Writer
	bursts bool // record and log every burst
	ssh    bool // counter.ssh for every connection

	mu        sync.Mutex
	listeners []net.Listener
	open      map[*conn]struct{}
	nextID    int
	done      bool
}

func newProxy(delay time.Duration, log io.Writer) *proxy {
	return &proxy{delay: delay, log: log, open: map[*conn]struct{}{}}
}

// listen starts accepting on r.listen; connections are served until
// shutdown.
func (p *proxy) listen(ctx context.Context, r route) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", r.listen)
	if err != nil {
		return fmt.Errorf("route %s: listen: %w", r.name, err)
	}
	p.mu.Lock()
	p.listeners = append(p.listeners, l)
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // listener closed
			}
			go p.serve(ctx, r, c)
		}
	}()
	return nil
}

// serve forwards one accepted connection until both directions ended.
func (p *proxy) serve(ctx context.Context, r route, client net.Conn) {
	var d net.Dialer
	server, err := d.DialContext(ctx, "tcp", r.target)
	if err != nil {
		client.Close()
		p.mu.Lock()
		fmt.Fprintf(p.log, "route=%s client=%s state=dial-failed error=%q\n", r.name, client.RemoteAddr(), err.Error())
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.nextID++
	c := &conn{id: p.nextID, route: r.name, client: client.RemoteAddr().String(), start: time.Now()}
	c.counts.start, c.counts.trace, c.counts.ssh, c.counts.unsolicited = c.start, p.bursts, p.ssh, -1
	p.open[c] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pump(client, server, p.delay, c, clientToServer) }()
	go func() { defer wg.Done(); pump(server, client, p.delay, c, serverToClient) }()
	wg.Wait()
	client.Close()
	server.Close()

	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.open[c]; ok { // not yet logged by shutdown
		delete(p.open, c)
		fmt.Fprintln(p.log, c.line("closed"))
	}
}

// shutdown closes the listeners and logs every connection still open.
func (p *proxy) shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	for _, l := range p.listeners {
		l.Close()
	}
	for c := range p.open {
		fmt.Fprintln(p.log, c.line("open-at-exit"))
		delete(p.open, c)
	}
}

// direction of a read.
type direction int

const (
	clientToServer direction = iota
	serverToClient
)

// conn is one proxied connection and its counts.
type conn struct {
	id     int
	route  string
	client string
	start  time.Time
	counts counter
}

func (c *conn) line(state string) string {
	s := c.counts.snapshot()
	bursts := ""
	if c.counts.trace {
		var b strings.Builder
		for i, x := range s.bursts {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%c%d@%.3f", "cs"[x.dir], x.bytes, x.at.Seconds())
		}
		bursts = " bursts=" + b.String()
	}
	return fmt.Sprintf("conn=%d route=%s client=%s state=%s round_trips=%d direction_changes=%d c2s_bytes=%d s2c_bytes=%d c2s_reads=%d s2c_reads=%d seconds=%.3f%s",
		c.id, c.route, c.client, state, s.RoundTrips, s.DirectionChanges, s.Bytes[clientToServer], s.Bytes[serverToClient],
		s.Reads[clientToServer], s.Reads[serverToClient], time.Since(c.start).Seconds(), bursts)
}

// counter counts the round trips of one connection from the sequence of
// reads in both directions. It is safe for concurrent use.
type counter struct {
	start time.Time // set before use: burst times are relative to it
	trace bool      // set before use: record bursts
	ssh   bool      // set before use: the server's banner and KEXINIT answer nothing

	mu sync.Mutex
	s  counts
	// pending: a server burst follows a client burst and has not yet
	// brought an answering byte.
	pending bool
	// head holds the server's first bytes until the end of its banner and
	// KEXINIT is known (-ssh); unsolicited is that end, -1 until known.
	head        []byte
	unsolicited int64
	clientEOF   bool
}

// burst is a run of reads in one direction.
type burst struct {
	dir   direction
	bytes int
	at    time.Duration // since the connection started
}

// counts is a snapshot of a counter.
type counts struct {
	// RoundTrips is the number of client→server bursts answered by a
	// server→client burst (changes from c2s to s2c).
	RoundTrips int
	// DirectionChanges counts every change of direction between reads.
	DirectionChanges int
	Bytes            [2]int64
	Reads            [2]int
	started          bool
	last             direction
	bursts           []burst // only when tracing
}

// unsolicitedEnd returns how many of the server's first bytes are its
// banner and first packet, or -1 while b is too short to tell.
func unsolicitedEnd(b []byte) int64 {
	off := 0
	for {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1
		}
		line := b[off : off+i+1]
		off += i + 1
		if bytes.HasPrefix(line, []byte("SSH-")) {
			break
		}
	}
	if len(b) < off+4 {
		return -1
	}
	return int64(off) + 4 + int64(binary.BigEndian.Uint32(b[off:off+4]))
}

// observe records a read of data in direction d.
func (c *counter) observe(d direction, data []byte) {
	n := len(data)
	if n <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.started && d != c.s.last {
		c.s.DirectionChanges++
		c.pending = d == serverToClient && !c.clientEOF
	}
	if !c.s.started && d == serverToClient {
		c.pending = false // nothing was asked
	}
	if d == serverToClient && c.pending {
		answers := true
		if c.ssh {
			if c.unsolicited < 0 && len(c.head) < 1<<16 {
				c.head = append(c.head, data...)
				c.unsolicited = unsolicitedEnd(c.head)
			}
			// answering only with a byte past the banner and KEXINIT
			answers = c.unsolicited >= 0 && c.s.Bytes[serverToClient]+int64(n) > c.unsolicited
		}
		if answers {
			c.s.RoundTrips++
			c.pending = false
		}
	} else if d == serverToClient && c.ssh && c.unsolicited < 0 && len(c.head) < 1<<16 {
		c.head = append(c.head, data...)
		c.unsolicited = unsolicitedEnd(c.head)
	}
	if c.trace {
		if !c.s.started || d != c.s.last {
			c.s.bursts = append(c.s.bursts, burst{dir: d, at: time.Since(c.start)})
		}
		c.s.bursts[len(c.s.bursts)-1].bytes += n
	}
	c.s.started, c.s.last = true, d
	c.s.Bytes[d] += int64(n)
	c.s.Reads[d]++
}

// clientClosed records that the client ended its side: server data read
// afterwards answers nothing.
func (c *counter) clientClosed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clientEOF = true
	if c.s.last == clientToServer {
		c.pending = false
	}
}

func (c *counter) snapshot() counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.bursts = append([]burst(nil), c.s.bursts...)
	return s
}

// chunk is data read at one moment, to be written at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst, each read delivered delay after it was read,
// counting reads on c. When src ends, dst's write side is shut down after
// everything was delivered; when dst fails, src is closed.
func pump(src, dst net.Conn, delay time.Duration, c *conn, d direction) {
	q := make(chan chunk, 4096)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		failed := false
		for ch := range q {
			if failed {
				continue // drain so the reader never blocks
			}
			if w := time.Until(ch.due); w > 0 {
				time.Sleep(w)
			}
			if _, err := dst.Write(ch.data); err != nil {
				failed = true
				src.Close()
			}
		}
		if tc, ok := dst.(interface{ CloseWrite() error }); ok && !failed {
			tc.CloseWrite()
		}
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			c.counts.observe(d, buf[:n])
			q <- chunk{data: buf[:n], due: time.Now().Add(delay)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// A reset or a close by the other pump: make the peer
				// see it too.
				dst.Close()
			}
			break
		}
	}
	if d == clientToServer {
		c.counts.clientClosed()
	}
	close(q)
	<-writerDone
}
