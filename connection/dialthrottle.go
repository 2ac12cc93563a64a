package connection

// Connection storms: when hundreds of hosts are dialled at once on a
// small controller, the TCP connects and SSH key exchanges compete for
// the same few cores (and the targets' sshds for theirs), every handshake
// slows down, and many miss connect_timeout together. The pool bounds the
// handshakes in flight (handshakeGate, PoolConfig.MaxHandshakes) apart
// from --forks, and tries a connect that failed for a transient cause
// again after a jittered exponential backoff (retryPolicy,
// PoolConfig.ConnectRetries).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Backoff between connect attempts: the wait before retry k (1, 2, ...) is
// drawn from [d/2, d] with d = backoffBase × 2^(k-1), at most backoffCap
// ("equal jitter": never less than half, so a host that refused has time
// to come up, and spread enough that retries of a storm do not all land at
// once).
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 4 * time.Second
)

// MaxConnectRetries is the largest PoolConfig.ConnectRetries honoured
// (and the largest tuning.connect_retries the defaults file accepts).
const MaxConnectRetries = 10

// DefaultMaxHandshakes is the bound on handshakes in flight that a zero
// PoolConfig.MaxHandshakes means: 8 per CPU the Go runtime uses
// (GOMAXPROCS), at least 32. When the CPUs are what limits (a small
// controller, or targets sharing its machine or hypervisor), handshakes
// finish at a fixed rate whatever the bound, and each one in flight takes
// bound / rate: on 2 cores with 200 lab hosts (about 16 handshakes a
// second) 32 at once finished all 200 as fast as no bound at all, each
// in about 2s, well within connect_timeout, where 8 and 16 were 5-30%
// slower and no bound made 5-7% of the hosts miss connect_timeout; when
// the network's round trips are what limits, more in flight is faster.
// See docs/benchmarks.md for the measurements.
func DefaultMaxHandshakes() int {
	return max(32, 8*runtime.GOMAXPROCS(0))
}

// RetryBound is the longest a connect to one host can take before it
// fails, not counting the wait for a handshake slot: retries+1 attempts
// of at most connectTimeout each, plus the longest backoff between them.
// With the defaults (2 retries, connect_timeout 10s) it is 31.5s.
func RetryBound(retries int, connectTimeout time.Duration) time.Duration {
	retries = min(max(retries, 0), MaxConnectRetries)
	return time.Duration(retries+1)*connectTimeout + backoffSum(retries)
}

// backoffSum is the longest total backoff of retries retries.
func backoffSum(retries int) time.Duration {
	var sum time.Duration
	for k := 1; k <= retries; k++ {
		sum += backoffMax(k)
	}
	return sum
}

// backoffMax is the longest wait before retry k (1, 2, ...).
func backoffMax(k int) time.Duration {
	d := backoffBase
	for i := 1; i < k && d < backoffCap; i++ {
		d *= 2
	}
	return min(d, backoffCap)
}

// AttemptsError is a connect that failed after more than one attempt:
// every attempt failed, the ones before the last for a transient cause
// (refused, reset, EOF or timeout during the handshake). Last is the last
// attempt's error (an *UnreachableError when the pool dialled), so
// errors.As finds it through AttemptsError.
type AttemptsError struct {
	Host     string // inventory name
	Attempts int    // connects tried, the first included
	// Elapsed is from the start of the first attempt to the end of the
	// last, backoff included (waits for a handshake slot too).
	Elapsed time.Duration
	Last    error
}

// Error is the last attempt's error, then how many attempts were made
// over how long.
func (e *AttemptsError) Error() string {
	return fmt.Sprintf("%v (gave up after %d connect attempts over %s; tuning.connect_retries sets how many)", e.Last, e.Attempts, e.Elapsed.Round(10*time.Millisecond))
}

// Unwrap returns the last attempt's error.
func (e *AttemptsError) Unwrap() error { return e.Last }

// transientDialError reports whether a failed connect may succeed if
// tried again soon: the peer refused or reset the TCP connection, closed
// it during the SSH handshake (EOF; sshd's MaxStartups does this under
// load), or the connect or handshake did not finish within
// connect_timeout. Never transient: an authentication failure, a host key
// that is unknown or changed, a name that does not resolve, an
// unreachable network or host, the caller's context ending, and any error
// it does not recognise.
func transientDialError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ue *UnreachableError
	if errors.As(err, &ue) && ue.Phase != PhaseConnect && ue.Phase != PhaseHandshake {
		return false // auth, hostkey, keepalive
	}
	var ae *AuthError
	var hk *HostKeyError
	if errors.As(err, &ae) || errors.As(err, &hk) {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound && (dns.IsTimeout || dns.IsTemporary)
	}
	switch {
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		return false
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// A jump host's forward: sshd reports the next hop's refusal in the
	// channel open failure's message.
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) {
		msg := strings.ToLower(oce.Message)
		return oce.Reason == ssh.ConnectionFailed && (strings.Contains(msg, "refused") || strings.Contains(msg, "reset"))
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// dialTimeoutError is a TCP connect or SSH handshake that did not finish
// within connect_timeout. It is a timeout (Timeout reports true), so
// transientDialError retries it whatever the underlying error (often
// "use of closed network connection", from closing the conn at the
// deadline).
type dialTimeoutError struct {
	handshake bool // the handshake, not the TCP connect, ran out of time
	timeout   time.Duration
	err       error // may be nil
}

func (e *dialTimeoutError) Error() string {
	msg := fmt.Sprintf("no answer within connect_timeout %s", e.timeout)
	if e.handshake {
		msg = fmt.Sprintf("no complete SSH handshake within connect_timeout %s", e.timeout)
	}
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *dialTimeoutError) Unwrap() error { return e.err }

// Timeout reports true.
func (e *dialTimeoutError) Timeout() bool { return true }

// handshakeGate bounds the connects plus handshakes in flight. A nil gate
// has no bound.
type handshakeGate struct {
	slots chan struct{}
}

// newHandshakeGate returns a gate for n at once; n < 1 means no bound
// (nil).
func newHandshakeGate(n int) *handshakeGate {
	if n < 1 {
		return nil
	}
	return &handshakeGate{slots: make(chan struct{}, n)}
}

// acquire waits for a slot, as long as ctx allows; release gives it back
// and must be called exactly once.
func (g *handshakeGate) acquire(ctx context.Context) (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// retryPolicy is how often and after which waits a failed connect is
// tried again.
type retryPolicy struct {
	retries int // attempts after the first
	// jitter returns a number in [0, n) (nil: math/rand/v2).
	jitter func(n int64) int64
	// sleep waits d or until ctx ends (nil: a timer).
	sleep func(ctx context.Context, d time.Duration) error
	// now is the clock for AttemptsError.Elapsed (nil: time.Now).
	now func() time.Time
}

// delay is the wait before retry k (1, 2, ...): equal jitter, in
// [backoffMax(k)/2, backoffMax(k)].
func (r retryPolicy) delay(k int) time.Duration {
	d := backoffMax(k)
	half := int64(d / 2)
	jitter := rand.Int64N
	if r.jitter != nil {
		jitter = r.jitter
	}
	return time.Duration(half + jitter(half+1))
}

func (r retryPolicy) wait(ctx context.Context, d time.Duration) error {
	if r.sleep != nil {
		return r.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dialWithRetries calls attempt until it succeeds, fails with an error
// that is not transient (transientDialError), r.retries retries are used
// up, or ctx ends, waiting r.delay between attempts. When more than one
// attempt was made and all failed, the error is an *AttemptsError; when
// ctx ends during a backoff, it is ctx's error naming host and addr.
func dialWithRetries[T any](ctx context.Context, r retryPolicy, host, addr string, attempt func(context.Context) (T, error)) (T, error) {
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	retries := min(max(r.retries, 0), MaxConnectRetries)
	start := now()
	for n := 1; ; n++ {
		v, err := attempt(ctx)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return v, err
		}
		if n > retries || !transientDialError(err) {
			if n == 1 {
				return v, err
			}
			return v, &AttemptsError{Host: host, Attempts: n, Elapsed: now().Sub(start), Last: err}
		}
		if werr := r.wait(ctx, r.delay(n)); werr != nil {
			var zero T
			return zero, fmt.Errorf("host %s (%s): connect: %w (while waiting to try again after: %v)", host, addr, werr, err)
		}
	}
}
