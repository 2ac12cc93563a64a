package connection

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/defaults"
	"github.com/opsmop/opsmop/internal/secret"
)

// TestTransientDialError is the classifier of retried connect failures.
func TestTransientDialError(t *testing.T) {
	dialErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: errno}}
	}
	readErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: errno}}
	}
	unreach := func(phase string, err error) error {
		return &UnreachableError{Host: "web1", Addr: "10.0.0.1:22", Phase: phase, Err: err}
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused", unreach(PhaseConnect, dialErr(syscall.ECONNREFUSED)), true},
		{"connection refused, bare", dialErr(syscall.ECONNREFUSED), true},
		{"connection reset during the handshake", unreach(PhaseHandshake, fmt.Errorf("ssh: handshake failed: %w", readErr(syscall.ECONNRESET))), true},
		{"EOF during the handshake", unreach(PhaseHandshake, fmt.Errorf("ssh: handshake failed: %w", io.EOF)), true},
		{"unexpected EOF", fmt.Errorf("ssh: handshake failed: %w", io.ErrUnexpectedEOF), true},
		{"handshake timeout (conn closed at the deadline)", unreach(PhaseHandshake, &dialTimeoutError{handshake: true, timeout: time.Second, err: net.ErrClosed}), true},
		{"handshake timeout without cause", unreach(PhaseHandshake, &dialTimeoutError{handshake: true, timeout: time.Second}), true},
		{"TCP connect timeout", unreach(PhaseConnect, &dialTimeoutError{timeout: time.Second, err: &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}}), true},
		{"read deadline", fmt.Errorf("ssh: handshake failed: %w", os.ErrDeadlineExceeded), true},
		{"jump host forward refused", unreach(PhaseConnect, &ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: "Connection refused"}), true},
		{"jump host forward prohibited", unreach(PhaseConnect, &ssh.OpenChannelError{Reason: ssh.Prohibited, Message: "administratively prohibited"}), false},
		{"jump host forward: no route", unreach(PhaseConnect, &ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: "No route to host"}), false},
		{"auth failure", unreach(PhaseAuth, &AuthError{Host: "web1", User: "deploy", Err: errors.New("ssh: unable to authenticate")}), false},
		{"auth phase ended by EOF", unreach(PhaseAuth, fmt.Errorf("ssh: handshake failed: %w", io.EOF)), false},
		{"auth error, bare", &AuthError{Host: "web1", Err: io.EOF}, false},
		{"host key changed", unreach(PhaseHostKey, &HostKeyError{Host: "web1", Changed: true}), false},
		{"host key unknown", unreach(PhaseHostKey, &HostKeyError{Host: "web1"}), false},
		{"keepalive", unreach(PhaseKeepalive, io.EOF), false},
		{"NXDOMAIN", unreach(PhaseConnect, &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "nope.example", IsNotFound: true}}), false},
		{"DNS timeout", unreach(PhaseConnect, &net.OpError{Op: "dial", Err: &net.DNSError{Err: "i/o timeout", Name: "slow.example", IsTimeout: true}}), true},
		{"DNS server failure", &net.DNSError{Err: "server misbehaving", Name: "x.example", IsTemporary: true}, true},
		{"network unreachable", unreach(PhaseConnect, dialErr(syscall.ENETUNREACH)), false},
		{"no route to host", unreach(PhaseConnect, dialErr(syscall.EHOSTUNREACH)), false},
		{"caller's context canceled", fmt.Errorf("host web1: connect: %w", context.Canceled), false},
		{"no common algorithm", unreach(PhaseHandshake, errors.New("ssh: handshake failed: ssh: no common algorithm for key exchange")), false},
		{"not an SSH server", unreach(PhaseHandshake, errors.New("ssh: handshake failed: ssh: overflow reading version string")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transientDialError(tt.err); got != tt.want {
				t.Errorf("transientDialError(%v): got %v; want %v", tt.err, got, tt.want)
			}
		})
	}

	// The real thing: connecting to a closed port on this machine.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = net.Dial("tcp", addr)
	if got := transientDialError(err); err == nil || !got {
		t.Errorf("transientDialError(dial of a closed port: %v): got %v; want true", err, got)
	}
}

// TestMaxConnectRetries holds the connection's limit equal to the
// defaults file's.
func TestMaxConnectRetries(t *testing.T) {
	if MaxConnectRetries != defaults.MaxConnectRetries {
		t.Fatalf("got MaxConnectRetries %d; want defaults.MaxConnectRetries %d", MaxConnectRetries, defaults.MaxConnectRetries)
	}
}

// TestHandshakeGate runs many fake dials through a gate of 3: never more
// than 3 in flight, and 3 reached. A nil gate has no bound, and a wait for
// a slot ends with ctx.
func TestHandshakeGate(t *testing.T) {
	const n, callers = 3, 30
	g := newHandshakeGate(n)
	var inFlight, peak atomic.Int32
	fakeDial := func() {
		cur := inFlight.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		inFlight.Add(-1)
	}
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			release, err := g.acquire(context.Background())
			if err != nil {
				t.Errorf("acquire: %v", err)
				return
			}
			defer release()
			fakeDial()
		})
	}
	wg.Wait()
	if got := peak.Load(); got != n {
		t.Errorf("peak dials in flight: got %d; want %d", got, n)
	}

	if g := newHandshakeGate(0); g != nil {
		t.Errorf("newHandshakeGate(0): got %+v; want nil (no bound)", g)
	}
	var none *handshakeGate
	for range 100 {
		if _, err := none.acquire(context.Background()); err != nil {
			t.Fatalf("nil gate acquire: %v", err)
		}
	}

	full := newHandshakeGate(1)
	release, _ := full.acquire(context.Background())
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := full.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquire on a full gate: got %v; want context.DeadlineExceeded when ctx ends", err)
	}
}

// fakeRetry is a retryPolicy whose sleeps are recorded, not slept, and
// whose jitter is fixed: low draws the shortest wait, else the longest.
func fakeRetry(retries int, low bool, slept *[]time.Duration) retryPolicy {
	return retryPolicy{
		retries: retries,
		jitter: func(n int64) int64 {
			if low {
				return 0
			}
			return n - 1
		},
		sleep: func(ctx context.Context, d time.Duration) error {
			*slept = append(*slept, d)
			return ctx.Err()
		},
	}
}

// TestDialWithRetries checks the attempt counts, the backoff (0.5s
// doubling, at most 4s, equal jitter) and the errors.
func TestDialWithRetries(t *testing.T) {
	refused := &UnreachableError{Host: "web1", Addr: "10.0.0.1:22", Phase: PhaseConnect, Err: &net.OpError{Op: "dial", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}}
	authFail := &UnreachableError{Host: "web1", Addr: "10.0.0.1:22", Phase: PhaseAuth, Err: &AuthError{Host: "web1", Err: errors.New("ssh: unable to authenticate")}}
	s := time.Second
	ms := time.Millisecond
	tests := []struct {
		name         string
		retries      int
		low          bool
		fails        []error // the attempts' errors in order; past the end: success
		wantAttempts int
		wantSlept    []time.Duration
		wantErr      error // nil: success
		wantAttErr   bool  // an *AttemptsError
	}{
		{"success at once", 2, false, nil, 1, nil, nil, false},
		{"no retries: the error as is", 0, false, []error{refused}, 1, nil, refused, false},
		{"refused twice, then success", 2, false, []error{refused, refused}, 3, []time.Duration{500 * ms, s}, nil, false},
		{"refused always, longest waits", 3, false, []error{refused, refused, refused, refused, refused}, 4, []time.Duration{500 * ms, s, 2 * s}, refused, true},
		{"refused always, shortest waits", 3, true, []error{refused, refused, refused, refused, refused}, 4, []time.Duration{250 * ms, 500 * ms, s}, refused, true},
		{"the wait stops doubling at 4s", 6, false, []error{refused, refused, refused, refused, refused, refused, refused}, 7, []time.Duration{500 * ms, s, 2 * s, 4 * s, 4 * s, 4 * s}, refused, true},
		{"retries above the maximum are capped", 50, true, repeat(refused, 60), MaxConnectRetries + 1, nil, refused, true},
		{"auth failure: never retried", 2, false, []error{authFail}, 1, nil, authFail, false},
		{"auth failure after a refusal: stops", 5, false, []error{refused, authFail}, 2, []time.Duration{500 * ms}, authFail, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var slept []time.Duration
			r := fakeRetry(tt.retries, tt.low, &slept)
			attempts := 0
			v, err := dialWithRetries(context.Background(), r, "web1", "10.0.0.1:22", func(context.Context) (string, error) {
				attempts++
				if attempts <= len(tt.fails) {
					return "", tt.fails[attempts-1]
				}
				return "client", nil
			})
			if attempts != tt.wantAttempts {
				t.Errorf("attempts: got %d; want %d", attempts, tt.wantAttempts)
			}
			if tt.wantSlept != nil && fmt.Sprint(slept) != fmt.Sprint(tt.wantSlept) {
				t.Errorf("backoff: got %v; want %v", slept, tt.wantSlept)
			}
			if len(slept) != attempts-1 {
				t.Errorf("backoff: got %d waits; want %d (one between attempts)", len(slept), attempts-1)
			}
			if tt.wantErr == nil {
				if err != nil || v != "client" {
					t.Fatalf("got %q, %v; want success", v, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error: got %v; want it to wrap %v", err, tt.wantErr)
			}
			var ae *AttemptsError
			if got := errors.As(err, &ae); got != tt.wantAttErr {
				t.Fatalf("error %v: *AttemptsError %v; want %v", err, got, tt.wantAttErr)
			}
			if ae != nil {
				if ae.Attempts != tt.wantAttempts || ae.Host != "web1" || ae.Last != tt.wantErr {
					t.Errorf("AttemptsError: got Host %q Attempts %d Last %v; want web1, %d, %v", ae.Host, ae.Attempts, ae.Last, tt.wantAttempts, tt.wantErr)
				}
				if want := fmt.Sprintf("gave up after %d connect attempts over ", tt.wantAttempts); !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), tt.wantErr.Error()) {
					t.Errorf("message: got %q; want the last error, then %q", err, want)
				}
				var ue *UnreachableError
				if !errors.As(err, &ue) {
					t.Errorf("errors.As(%v, *UnreachableError): false; want the last attempt's error found", err)
				}
			}
		})
	}

	t.Run("ctx ends during the backoff", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		r := retryPolicy{retries: 5, sleep: func(ctx context.Context, d time.Duration) error {
			cancel()
			return ctx.Err()
		}}
		attempts := 0
		_, err := dialWithRetries(ctx, r, "web1", "10.0.0.1:22", func(context.Context) (int, error) {
			attempts++
			return 0, refused
		})
		if attempts != 1 || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "host web1 (10.0.0.1:22)") {
			t.Errorf("got %d attempts, %v; want 1 and context.Canceled naming the host", attempts, err)
		}
	})

	t.Run("real jitter stays within bounds", func(t *testing.T) {
		r := retryPolicy{}
		for k := 1; k <= 8; k++ {
			hi := min(backoffBase<<(k-1), backoffCap)
			for range 200 {
				if d := r.delay(k); d < hi/2 || d > hi {
					t.Fatalf("delay(%d): got %v; want within [%v, %v]", k, d, hi/2, hi)
				}
			}
		}
	})
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// TestRetryBound is the documented worst case of a host that is down.
func TestRetryBound(t *testing.T) {
	tests := []struct {
		retries int
		timeout time.Duration
		want    time.Duration
	}{
		{0, 10 * time.Second, 10 * time.Second},
		{defaults.DefaultConnectRetries, defaults.DefaultConnectTimeout, 31500 * time.Millisecond},
		{4, time.Second, 5*time.Second + 7500*time.Millisecond},
		{10, time.Second, 11*time.Second + 31500*time.Millisecond},
		{99, time.Second, 11*time.Second + 31500*time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d retries of %s", tt.retries, tt.timeout), func(t *testing.T) {
			if got := RetryBound(tt.retries, tt.timeout); got != tt.want {
				t.Errorf("RetryBound(%d, %s): got %v; want %v", tt.retries, tt.timeout, got, tt.want)
			}
		})
	}
}

// testSSHServer serves SSH on ln: password "pw" logs in, nothing else is
// served. drop says, per accepted connection (0, 1, ...), to close it at
// once instead (EOF before the SSH version). It returns how many
// connections were accepted so far.
func testSSHServer(t *testing.T, ln net.Listener, drop func(i int) bool) func() int {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		if string(pw) == "pw" {
			return nil, nil
		}
		return nil, errors.New("wrong password")
	}}
	cfg.AddHostKey(signer)
	var accepted atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			if drop != nil && drop(i) {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				_, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "test server")
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return func() int { return int(accepted.Load()) }
}

// testPool is a pool with an empty known_hosts and the given tuning.
func testPool(t *testing.T, maxHandshakes, retries int) *Pool {
	t.Helper()
	p := NewPool(PoolConfig{KnownHostsFiles: []string{filepath.Join(t.TempDir(), "kh")}, MaxHandshakes: maxHandshakes, ConnectRetries: retries})
	t.Cleanup(func() { p.Close() })
	return p
}

// TestDialRetriesRefusedThenAccepts: a port that refuses connections until
// its server starts 300ms later is reached with retries, and not without.
func TestDialRetriesRefusedThenAccepts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tg := Target{Name: "late", Address: "127.0.0.1", Port: port, User: "u", Password: secret.New("pw"), ConnectTimeout: 5 * time.Second}

	// Without retries the refusal is final.
	if _, err := testPool(t, 0, 0).Host(context.Background(), tg); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("no retries: got %v; want connection refused", err)
	}

	started := make(chan func() int, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			close(started)
			return
		}
		started <- testSSHServer(t, ln, nil)
	}()
	start := time.Now()
	h, err := testPool(t, 0, 3).Host(context.Background(), tg)
	elapsed := time.Since(start)
	accepted := <-started
	if err != nil {
		t.Fatalf("3 retries: got %v; want the host reached once its server started", err)
	}
	h.Close()
	// The first attempt (at once) was refused: the connect that worked
	// came after at least one backoff.
	if accepted == nil {
		t.Fatal("the server did not start")
	}
	if n := accepted(); elapsed < 250*time.Millisecond || n != 1 {
		t.Errorf("got the host after %v with %d connections accepted; want after >= 250ms (a retry) and exactly one accepted", elapsed, n)
	}
}

// TestDialRetriesEOF: a server that closes the first two connections
// before speaking SSH (as sshd's MaxStartups does under load) is reached
// on the third attempt with 2 retries; with 1 retry the error is an
// *AttemptsError of 2 attempts whose last error is the EOF (or reset).
func TestDialRetriesEOF(t *testing.T) {
	tests := []struct {
		retries int
		wantOK  bool
	}{
		{2, true},
		{1, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d retries", tt.retries), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			accepted := testSSHServer(t, ln, func(i int) bool { return i < 2 })
			tg := Target{Name: "busy", Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, User: "u", Password: secret.New("pw"), ConnectTimeout: 5 * time.Second}
			h, err := testPool(t, 0, tt.retries).Host(context.Background(), tg)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("got %v; want the host reached on the third attempt", err)
				}
				h.Close()
				if got := accepted(); got != 3 {
					t.Errorf("connections accepted: got %d; want 3", got)
				}
				return
			}
			var ae *AttemptsError
			var ue *UnreachableError
			// Closed before the SSH version: EOF, or a reset when the
			// client's version was already sent.
			dropped := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
			if !errors.As(err, &ae) || ae.Attempts != 2 || !dropped || !errors.As(err, &ue) || ue.Phase != PhaseHandshake {
				t.Fatalf("got %v; want an *AttemptsError of 2 attempts, the last an EOF or reset in the handshake", err)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("host busy (%s): handshake: ", ln.Addr())) || !strings.Contains(err.Error(), "gave up after 2 connect attempts over") {
				t.Errorf("message: got %q; want the host, the phase and the attempts", err)
			}
		})
	}
}

// TestDialRetriesWrongPassword: an authentication failure is never tried
// again.
func TestDialRetriesWrongPassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := testSSHServer(t, ln, nil)
	tg := Target{Name: "locked", Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, User: "u", Password: secret.New("wrong"),
		NoPubkey: true, ConnectTimeout: 5 * time.Second}
	_, err = testPool(t, 0, 5).Host(context.Background(), tg)
	var ue *UnreachableError
	var ae *AttemptsError
	if !errors.As(err, &ue) || ue.Phase != PhaseAuth || errors.As(err, &ae) {
		t.Fatalf("got %v; want *UnreachableError{Phase: auth} after one attempt", err)
	}
	if got := accepted(); got != 1 {
		t.Errorf("connections accepted: got %d; want 1 (no retry)", got)
	}
}

// muteListener accepts TCP connections and never says anything, like a
// host whose sshd is stopped (SIGSTOP: the kernel still completes the
// TCP handshake). It counts the connections and notes when each was
// accepted.
type muteListener struct {
	ln         net.Listener
	open, seen atomic.Int32

	mu       sync.Mutex
	accepted []time.Time
}

// peakWithin is the most connections accepted within any window of d.
func (m *muteListener) peakWithin(d time.Duration) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := slices.Clone(m.accepted)
	slices.SortFunc(ts, time.Time.Compare)
	peak := 0
	for i := range ts {
		n := 0
		for j := i; j < len(ts) && ts[j].Sub(ts[i]) < d; j++ {
			n++
		}
		peak = max(peak, n)
	}
	return peak
}

func newMuteListener(t *testing.T) *muteListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &muteListener{ln: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			now := time.Now()
			m.mu.Lock()
			m.accepted = append(m.accepted, now)
			m.mu.Unlock()
			m.seen.Add(1)
			m.open.Add(1)
			wg.Go(func() {
				// Until the client gives up and closes.
				_, _ = io.Copy(io.Discard, c)
				m.open.Add(-1)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return m
}

func (m *muteListener) port() int { return m.ln.Addr().(*net.TCPAddr).Port }

// TestDialDownHostBound: a host whose sshd never answers fails after
// connect_retries+1 attempts, within RetryBound, with an *AttemptsError
// saying so.
func TestDialDownHostBound(t *testing.T) {
	m := newMuteListener(t)
	const timeout, retries = 200 * time.Millisecond, 2
	tg := Target{Name: "frozen", Address: "127.0.0.1", Port: m.port(), User: "u", ConnectTimeout: timeout}
	start := time.Now()
	_, err := testPool(t, 0, retries).Host(context.Background(), tg)
	elapsed := time.Since(start)
	var ae *AttemptsError
	var ue *UnreachableError
	if !errors.As(err, &ae) || ae.Attempts != retries+1 || !errors.As(err, &ue) || ue.Phase != PhaseHandshake {
		t.Fatalf("got %v; want an *AttemptsError of %d attempts, the last a handshake timeout", err, retries+1)
	}
	if !strings.Contains(err.Error(), "no complete SSH handshake within connect_timeout 200ms") || !strings.Contains(err.Error(), "gave up after 3 connect attempts over") {
		t.Errorf("message: got %q; want the timeout and the attempts", err)
	}
	least := (retries+1)*timeout + 250*time.Millisecond + 500*time.Millisecond // shortest backoffs
	if bound := RetryBound(retries, timeout); elapsed < least || elapsed > bound+time.Second {
		t.Errorf("failed after %v; want between %v and RetryBound %v (+1s slack)", elapsed, least, bound)
	}
	if ae.Elapsed > elapsed || ae.Elapsed < least {
		t.Errorf("AttemptsError.Elapsed: got %v; want between %v and %v", ae.Elapsed, least, elapsed)
	}
	if got := m.seen.Load(); got != retries+1 {
		t.Errorf("connections seen by the host: got %d; want %d", got, retries+1)
	}
}

// TestPoolHandshakeGate dials 8 hosts whose sshd never answers through a
// pool of MaxHandshakes 2: the connections come 2 at a time, one pair per
// connect_timeout (each holds its slot until its handshake times out, so
// no 3 are ever accepted within half a timeout), each attempt still gets
// its whole connect_timeout (the wait for a slot does not count), and a
// caller whose ctx ends while waiting gets ctx's error.
func TestPoolHandshakeGate(t *testing.T) {
	m := newMuteListener(t)
	const timeout = 200 * time.Millisecond
	p := testPool(t, 2, 0)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	start := time.Now()
	for i := range errs {
		wg.Go(func() {
			// One listener, 8 pool keys: the user differs.
			_, errs[i] = p.Host(context.Background(), Target{Name: fmt.Sprintf("h%d", i), Address: "127.0.0.1", Port: m.port(), User: fmt.Sprintf("u%d", i), ConnectTimeout: timeout})
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, err := range errs {
		var ue *UnreachableError
		if !errors.As(err, &ue) || ue.Phase != PhaseHandshake {
			t.Errorf("host h%d: got %v; want a handshake timeout (the whole connect_timeout for the handshake)", i, err)
		}
	}
	if got := m.peakWithin(timeout / 2); got != 2 {
		t.Errorf("connections accepted within %v: got at most %d; want 2 (MaxHandshakes)", timeout/2, got)
	}
	if got := m.seen.Load(); got != 8 {
		t.Errorf("connections seen: got %d; want 8", got)
	}
	if want := 4 * timeout; elapsed < want {
		t.Errorf("8 handshake timeouts 2 at a time took %v; want at least %v", elapsed, want)
	}

	// A full gate: the caller's ctx bounds the wait, and the failure is
	// not remembered.
	full := testPool(t, 1, 0)
	go full.Host(context.Background(), Target{Name: "holder", Address: "127.0.0.1", Port: m.port(), User: "holder", ConnectTimeout: time.Second})
	for m.seen.Load() < int32(len(errs))+1 { // the holder has its slot
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := full.Host(ctx, Target{Name: "waiter", Address: "127.0.0.1", Port: m.port(), User: "waiter", ConnectTimeout: 2 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for a handshake slot") {
		t.Errorf("waiting on a full gate: got %v; want context.DeadlineExceeded while waiting for a handshake slot", err)
	}
}
