package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/testutil"
)

func TestCounter(t *testing.T) {
	const c, s = clientToServer, serverToClient
	tests := []struct {
		name        string
		reads       []direction
		wantRT      int
		wantChanges int
	}{
		{"nothing", nil, 0, 0},
		{"client only", []direction{c, c, c}, 0, 0},
		{"one exchange", []direction{c, s}, 1, 1},
		{"split bursts count once", []direction{c, c, s, s, s}, 1, 1},
		{"server speaks first (ssh banner)", []direction{s, c, s, c, s}, 2, 4},
		{"three exchanges", []direction{c, s, c, s, c, s}, 3, 5},
		{"trailing client burst", []direction{c, s, c}, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := counter{unsolicited: -1}
			for _, d := range tt.reads {
				k.observe(d, make([]byte, 10))
			}
			k.observe(c, nil) // empty reads are not bursts
			got := k.snapshot()
			if got.RoundTrips != tt.wantRT || got.DirectionChanges != tt.wantChanges {
				t.Errorf("got round trips %d, changes %d; want %d, %d", got.RoundTrips, got.DirectionChanges, tt.wantRT, tt.wantChanges)
			}
			if got.Bytes[c]+got.Bytes[s] != int64(10*len(tt.reads)) {
				t.Errorf("got %d bytes in all; want %d", got.Bytes[c]+got.Bytes[s], 10*len(tt.reads))
			}
		})
	}
}

// TestCounterSSH: with -ssh the server's banner and KEXINIT answer
// nothing, however they are split and wherever they fall among the
// client's bytes; and server data after the client closed answers
// nothing in any mode.
func TestCounterSSH(t *testing.T) {
	banner := []byte("SSH-2.0-OpenSSH_9.2\r\n")
	kexinit := append([]byte{0, 0, 0, 12}, make([]byte, 12)...)
	type read struct {
		d    direction
		data []byte
	}
	c := func(n int) read { return read{clientToServer, make([]byte, n)} }
	sv := func(b ...[]byte) read { return read{serverToClient, bytes.Join(b, nil)} }
	reply := []byte("reply")
	tests := []struct {
		name   string
		ssh    bool
		reads  []read
		closed int // the client closes after this many reads (0: never)
		want   int
	}{
		{"banner and KEXINIT in one burst, first", true, []read{sv(banner, kexinit), c(5), c(9), sv(reply), c(4), sv(reply)}, 0, 2},
		{"client banner first, KEXINIT apart", true, []read{c(5), sv(banner), c(9), sv(kexinit), c(7), sv(reply), c(4), sv(reply)}, 0, 2},
		{"KEXINIT split over reads", true, []read{c(5), sv(banner, kexinit[:3]), c(9), sv(kexinit[3:]), c(7), sv(reply), c(4), sv(reply)}, 0, 2},
		{"lines before the banner", true, []read{c(5), sv([]byte("hello\n"), banner, kexinit), c(9), sv(reply)}, 0, 1},
		{"answer after close", false, []read{c(5), sv(reply), c(3), sv(reply)}, 3, 1},
		{"answer after close, ssh", true, []read{c(5), sv(banner, kexinit), c(7), sv(reply), c(3), sv(reply)}, 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := counter{ssh: tt.ssh, unsolicited: -1}
			for i, r := range tt.reads {
				if tt.closed > 0 && i == tt.closed {
					k.clientClosed()
				}
				k.observe(r.d, r.data)
			}
			if got := k.snapshot().RoundTrips; got != tt.want {
				t.Errorf("got %d round trips; want %d", got, tt.want)
			}
		})
	}
}

func TestCounterBursts(t *testing.T) {
	k := counter{start: time.Now(), trace: true, unsolicited: -1}
	k.observe(clientToServer, make([]byte, 5))
	k.observe(clientToServer, make([]byte, 7))
	k.observe(serverToClient, make([]byte, 3))
	k.observe(clientToServer, make([]byte, 1))
	got := k.snapshot().bursts
	want := []struct {
		dir   direction
		bytes int
	}{{clientToServer, 12}, {serverToClient, 3}, {clientToServer, 1}}
	if len(got) != len(want) {
		t.Fatalf("got %d bursts %+v; want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].dir != want[i].dir || got[i].bytes != want[i].bytes {
			t.Errorf("burst %d: got dir %d, %d bytes; want dir %d, %d bytes", i, got[i].dir, got[i].bytes, want[i].dir, want[i].bytes)
		}
	}
	c := conn{id: 1, route: "r", client: "x", start: k.start, counts: counter{start: k.start, trace: true, unsolicited: -1}}
	c.counts.observe(clientToServer, make([]byte, 4))
	c.counts.observe(serverToClient, make([]byte, 9))
	if line := c.line("closed"); !strings.Contains(line, " bursts=c4@") || !strings.Contains(line, ",s9@") {
		t.Errorf("got line %q; want bursts=c4@...,s9@...", line)
	}
}

func TestRouteFlag(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"h1,127.0.0.1:2222,127.80.0.1:22", false},
		{"h1,127.0.0.1:2222", true},
		{",127.0.0.1:2222,127.80.0.1:22", true},
		{"h1,a,b,c", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var r routeFlags
			err := r.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Errorf("got error %v; want error %v", err, tt.wantErr)
			}
		})
	}
}

// echoServer answers every line with the same line, until EOF.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// TestProxyEndToEnd runs the command against an echo server: exchanges
// are delayed by twice the delay, counted, and logged when the client
// closes; a connection still open at SIGTERM (context end) is logged too.
func TestProxyEndToEnd(t *testing.T) {
	const delay = 20 * time.Millisecond
	const exchanges = 3
	target := echoServer(t)
	listen := freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "rt.log")
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr testutil.SyncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"-delay", delay.String(), "-log", logPath, "-route", "e," + listen + "," + target}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stdout.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("got no ready line (stderr %q); want one", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}

	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	start := time.Now()
	for i := range exchanges {
		msg := strings.Repeat("x", i+1) + "\n"
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("exchange %d: got %q, %v; want %q", i, got, err, msg)
		}
	}
	if el, min := time.Since(start), exchanges*2*delay; el < min {
		t.Errorf("got %d exchanges in %v; want at least %v (2×delay each)", exchanges, el, min)
	}
	c.Close()

	// A second connection stays open until the proxy is told to stop.
	c2, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := io.WriteString(c2, "y\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "y\n" {
		t.Fatalf("second connection: got %q, %v; want %q", got, err, "y\n")
	}

	for !strings.Contains(readFile(t, logPath), "state=closed") {
		if time.Now().After(deadline) {
			t.Fatalf("got log %q; want a closed connection logged", readFile(t, logPath))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("got exit %d (stderr %q); want 0", code, stderr.String())
	}
	log := readFile(t, logPath)
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 2 {
		t.Fatalf("got log lines %q; want 2", lines)
	}
	for _, want := range []string{"conn=1 route=e", "state=closed", "round_trips=3 ", "direction_changes=5 ", "c2s_bytes=9 ", "s2c_bytes=9 "} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("got first line %q; want it to contain %q", lines[0], want)
		}
	}
	for _, want := range []string{"conn=2 route=e", "state=open-at-exit", "round_trips=1 "} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("got second line %q; want it to contain %q", lines[1], want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no log", []string{"-route", "a,127.0.0.1:0,127.0.0.1:1"}},
		{"no route", []string{"-log", "x"}},
		{"bad route", []string{"-log", "x", "-route", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(t.Context(), tt.args, &out, &errb); code != 2 {
				t.Errorf("got exit %d; want 2", code)
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
