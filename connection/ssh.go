package connection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/internal/secret"
)

// Target is the effective connection settings for one host, computed by the
// caller from inventory, defaults and role.
type Target struct {
	// Name is the inventory name, used in errors and known_hosts messages.
	Name    string
	Address string
	Port    int // 0 means 22 (see withDefaults)
	User    string
	// Password is used for "password" and "keyboard-interactive" auth.
	Password secret.Secret
	// PrivateKey is a key file; "" tries ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
	// It is offered first (its certificate PRIVATEKEY-cert.pub, when that
	// file exists, just before it), then the agent's other keys, then the
	// password: see Pool.signers.
	PrivateKey string
	// IdentitiesOnly offers only PrivateKey (or, when that is "", the
	// default key files) and none of the agent's other keys, like
	// OpenSSH's IdentitiesOnly=yes. The agent is still used to sign for
	// PrivateKey when it holds that key.
	IdentitiesOnly bool
	// IdentityFiles are more key files (ssh config IdentityFile), offered
	// after PrivateKey in order, each with its PATH-cert.pub like
	// PrivateKey. With neither PrivateKey nor IdentityFiles the default
	// key files are tried.
	IdentityFiles []string
	// CertificateFiles are certificate files (ssh config CertificateFile);
	// each is offered just before the key file or agent key it certifies.
	// One that certifies none of the keys offered is noted in the
	// *AuthError of a failed login.
	CertificateFiles []string
	// IdentityAgent is the agent to ask for keys: "" the pool's
	// ($SSH_AUTH_SOCK when PoolConfig.UseAgent), IdentityAgentNone none,
	// else the agent socket's path.
	IdentityAgent string
	// NoPubkey, NoPassword and NoKeyboardInteractive turn those
	// authentication methods off (ssh config PubkeyAuthentication no,
	// PasswordAuthentication no, KbdInteractiveAuthentication no).
	NoPubkey, NoPassword, NoKeyboardInteractive bool
	// BatchMode never asks for a key's passphrase (ssh config BatchMode
	// yes): an encrypted key the agent does not hold is skipped.
	BatchMode     bool
	CheckHostKeys bool
	// KnownHosts, when non-nil, replaces the pool's known_hosts files for
	// this hop (ssh config UserKnownHostsFile / GlobalKnownHostsFile).
	KnownHosts *KnownHosts
	// AcceptNewHostKeys records this hop's key when known_hosts has none
	// for it (ssh config StrictHostKeyChecking accept-new or no), as
	// PoolConfig.AcceptNewHostKeys does for every hop. A changed key is
	// still refused.
	AcceptNewHostKeys bool
	// Network is the dialled network: "" or "tcp" any address family,
	// "tcp4" IPv4 only, "tcp6" IPv6 only (ssh config AddressFamily).
	Network string
	// Keepalive and KeepaliveMax replace PoolConfig.Keepalive and the
	// count of unanswered keepalives after which the peer is dead (3) for
	// a connection this Target dials (ssh config ServerAliveInterval,
	// ServerAliveCountMax); 0 keeps the pool's.
	Keepalive    time.Duration
	KeepaliveMax int
	// Sudo runs every command (and file write) as SudoUser ("" = root).
	Sudo         bool
	SudoUser     string
	SudoPassword secret.Secret
	// ConnectTimeout bounds TCP connect plus the whole SSH handshake (and
	// the sudo password exchange); 0 means defaultConnectTimeout, the same
	// as defaults.DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// CommandTimeout bounds each command; 0 means no limit but the context.
	CommandTimeout time.Duration
	// Via is the jump host (which may itself have a Via); nil = direct.
	Via *Target
}

// IdentityAgentNone as Target.IdentityAgent turns the agent off.
const IdentityAgentNone = "none"

// KnownHosts are the known_hosts files of a Target.
type KnownHosts struct {
	// Files are consulted, in order; a missing file is empty.
	Files []string
	// Record is where a new key is written (AcceptNewHostKeys); "" means
	// nowhere, which makes accepting a new key an error.
	Record string
	// Hash writes the host name hashed (ssh config HashKnownHosts).
	Hash bool
}

// PoolConfig configures a Pool.
type PoolConfig struct {
	// KnownHostsFiles are consulted for host keys; default
	// ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. New keys are
	// recorded into the first.
	KnownHostsFiles []string
	// AcceptNewHostKeys records unknown host keys (trust on first use);
	// changed keys are still refused.
	AcceptNewHostKeys bool
	// UseAgent offers the keys of the agent at $SSH_AUTH_SOCK.
	UseAgent bool
	// Passphrase is asked for the passphrase of an encrypted key file. nil
	// makes an encrypted private_key an error (and skips encrypted default
	// keys).
	Passphrase func(keyPath string) (secret.Secret, error)
	// Warn receives the "host key checking disabled" warning, once per pool.
	Warn io.Writer
	// Keepalive is the interval of keepalive@openssh.com probes (default
	// 15s); a peer missing 3 replies in a row is declared dead.
	Keepalive time.Duration
	// MaxHandshakes bounds the TCP connects plus SSH handshakes in flight
	// at once across the pool (each hop of a jump chain is one), apart
	// from how many hosts the caller works on at once: 0 means
	// DefaultMaxHandshakes(), a negative number no bound. Waiting for a
	// slot is bounded by the caller's ctx, not by ConnectTimeout.
	MaxHandshakes int
	// ConnectRetries is how many times a connect that failed for a
	// transient cause (refused, reset, EOF or timeout during the
	// handshake) is tried again, after a jittered exponential backoff
	// (0.5s doubling, at most 4s); 0 none, at most MaxConnectRetries. A
	// host that is down fails within RetryBound(ConnectRetries,
	// ConnectTimeout) plus the wait for handshake slots.
	ConnectRetries int
}

// defaultConnectTimeout is what a zero Target.ConnectTimeout means.
// opsmop's default for connect_timeout lives in defaults
// (defaults.DefaultConnectTimeout), which resolves every host's settings
// and passes the timeout in; this is the same value for callers that leave
// it zero (TestDefaultConnectTimeout holds the two equal).
const defaultConnectTimeout = 10 * time.Second

const (
	defaultKeepalive = 15 * time.Second
	maxViaDepth      = 8
)

// Pool holds one SSH connection per (address, port, user, jump chain) for
// its whole life, shared by every caller. It is safe for concurrent use.
type Pool struct {
	cfg PoolConfig

	mu     sync.Mutex
	conns  map[string]*sshConn
	order  []*sshConn // dial order: parents before children
	closed bool

	khMu     sync.Mutex // serialises known_hosts reads and writes
	warnOnce sync.Once

	gate  *handshakeGate // bounds connects+handshakes in flight; nil: none
	retry retryPolicy    // of transient connect failures
}

// NewPool returns an empty pool; connections are made by Host.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = defaultKeepalive
	}
	if len(cfg.KnownHostsFiles) == 0 {
		if home, err := os.UserHomeDir(); err == nil {
			cfg.KnownHostsFiles = append(cfg.KnownHostsFiles, filepath.Join(home, ".ssh", "known_hosts"))
		}
		cfg.KnownHostsFiles = append(cfg.KnownHostsFiles, "/etc/ssh/ssh_known_hosts")
	}
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes()
	}
	cfg.ConnectRetries = min(max(cfg.ConnectRetries, 0), MaxConnectRetries)
	return &Pool{cfg: cfg, conns: map[string]*sshConn{},
		gate: newHandshakeGate(cfg.MaxHandshakes), retry: retryPolicy{retries: cfg.ConnectRetries}}
}

// SSHHost runs commands and writes files on one host over the pool's shared
// connection, as the login user or (Target.Sudo) as the sudo user. Commands
// go through one persistent sh per (connection, become-user), serialised;
// files go through one SFTP client per (connection, become-user).
type SSHHost struct {
	c      *sshConn
	name   string
	ident  identity
	sudoPw secret.Secret
	cmdTO  time.Duration
	connTO time.Duration

	mu     sync.Mutex
	closed bool
}

// identity is who commands run as on a connection.
type identity struct {
	sudo bool
	user string // sudo target user (root when empty and sudo)
}

func (id identity) key() string {
	if !id.sudo {
		return ""
	}
	return "sudo:" + id.user
}

// Host returns a handle on t's host, dialling (and any jump hosts) on first
// use. Concurrent callers for the same host wait for the one dial; a failed
// dial is remembered for the pool's life (the host is unreachable for this
// run) unless it failed because the caller's ctx ended. Credentials and
// timeouts of the connection come from the Target that dialled it; Sudo,
// SudoUser, SudoPassword and CommandTimeout are per handle.
func (p *Pool) Host(ctx context.Context, t Target) (*SSHHost, error) {
	for hop, depth := &t, 0; hop != nil && depth <= maxViaDepth; hop, depth = hop.Via, depth+1 {
		if !hop.CheckHostKeys {
			name := hop.Name
			p.warnOnce.Do(func() {
				if p.cfg.Warn != nil {
					fmt.Fprintf(p.cfg.Warn, "warning: host key checking disabled (check_host_keys = false) for %s and possibly others: connections can be intercepted; keys that contradict known_hosts are still refused\n", name)
				}
			})
			break
		}
	}
	t = t.withDefaults()
	c, err := p.conn(ctx, t, 0)
	if err != nil {
		return nil, err
	}
	h := &SSHHost{c: c, name: t.Name, sudoPw: t.SudoPassword, cmdTO: t.CommandTimeout, connTO: t.ConnectTimeout}
	if t.Sudo {
		h.ident = identity{sudo: true, user: t.SudoUser}
	}
	return h, nil
}

// withDefaults returns t with the zero settings that have a default filled
// in, along its jump chain as far as Pool.Host follows it (the hops are
// copies; the caller's are not changed): Port 22, ConnectTimeout
// defaultConnectTimeout, SudoUser root when Sudo. Pool.Host applies it
// once; everything after it reads the fields as they are.
func (t Target) withDefaults() Target {
	return t.withDefaultsFrom(0)
}

func (t Target) withDefaultsFrom(depth int) Target {
	if t.Port == 0 {
		t.Port = 22
	}
	if t.ConnectTimeout <= 0 {
		t.ConnectTimeout = defaultConnectTimeout
	}
	if t.Sudo && t.SudoUser == "" {
		t.SudoUser = "root"
	}
	// A chain deeper than maxViaDepth is refused (conn), and a cycle must
	// not make this loop forever.
	if t.Via != nil && depth <= maxViaDepth {
		via := t.Via.withDefaultsFrom(depth + 1)
		t.Via = &via
	}
	return t
}

// Close releases this handle: later calls on it fail. The shared
// connection, shells and SFTP clients stay open for other handles until
// Pool.Close.
func (h *SSHHost) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	return nil
}

func (h *SSHHost) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("host %s: handle is closed", h.name)
	}
	return nil
}

// Close ends every shell, SFTP client and connection of the pool (children
// before their jump hosts). Later Host calls fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.order
	p.order = nil
	p.conns = map[string]*sshConn{}
	p.mu.Unlock()
	var errs []error
	for i := len(conns) - 1; i >= 0; i-- {
		if err := conns[i].close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// addrOf is t's address for dialling; t has its defaults (withDefaults).
func addrOf(t Target) string {
	return net.JoinHostPort(t.Address, strconv.Itoa(t.Port))
}

func connKey(t Target, depth int) string {
	k := t.User + "@" + addrOf(t)
	if t.Via != nil && depth < maxViaDepth+1 {
		k += " via " + connKey(*t.Via, depth+1)
	}
	return k
}

// sshConn is one pooled SSH connection.
type sshConn struct {
	pool   *Pool
	key    string
	name   string // inventory name of the target that dialled it
	addr   string
	user   string
	parent *sshConn

	ready  chan struct{} // closed when the dial finished
	client *ssh.Client
	err    error // dial error
	retry  bool  // err was the dialling caller's ctx: others may retry

	sem chan struct{} // session budget (session.go)
	sl  sessionLimits // sshd's session limit as learned (session.go)
	// sudoTTY is set once sudo refused for want of a terminal (sudoers
	// requiretty): sudo then starts under script(1) (sudo.go).
	sudoTTY atomic.Bool
	done    chan struct{} // closed when the connection is gone

	mu     sync.Mutex
	dead   error // set when the connection is lost
	shells map[string]*shellSlot
	sftps  map[string]*sftpSlot
}

func (p *Pool) conn(ctx context.Context, t Target, depth int) (*sshConn, error) {
	if depth > maxViaDepth {
		return nil, fmt.Errorf("host %s: jump chain (opsmop_via) deeper than %d hops: is there a cycle?", t.Name, maxViaDepth)
	}
	if t.Address == "" {
		return nil, fmt.Errorf("host %s: no address", t.Name)
	}
	key := connKey(t, depth)
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("host %s: connection pool is closed", t.Name)
		}
		c := p.conns[key]
		if c == nil {
			c = &sshConn{pool: p, key: key, name: t.Name, addr: addrOf(t), user: t.User,
				ready: make(chan struct{}), sem: make(chan struct{}, sessionBudget), done: make(chan struct{}),
				shells: map[string]*shellSlot{}, sftps: map[string]*sftpSlot{}}
			p.conns[key] = c
			p.mu.Unlock()
			p.dialConn(ctx, c, t, depth)
			if c.err != nil {
				return nil, c.err
			}
			return c, nil
		}
		p.mu.Unlock()
		select {
		case <-c.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if c.err != nil && c.retry {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			continue
		}
		if c.err != nil {
			return nil, c.err
		}
		return c, nil
	}
}

func (p *Pool) dialConn(ctx context.Context, c *sshConn, t Target, depth int) {
	defer close(c.ready)
	var parent *sshConn
	if t.Via != nil {
		var err error
		parent, err = p.conn(ctx, *t.Via, depth+1)
		if err != nil {
			c.err = err
			if ctx.Err() != nil {
				c.retry = true
				p.forget(c)
				return
			}
			var ue *UnreachableError
			if errors.As(err, &ue) {
				c.err = &UnreachableError{Host: t.Name, Addr: c.addr, Phase: PhaseConnect, Err: fmt.Errorf("via jump host %s: %w", t.Via.Name, err)}
			}
			return
		}
	}
	c.parent = parent
	client, err := p.dial(ctx, t, parent)
	if err != nil {
		c.err = err
		if ctx.Err() != nil {
			c.retry = true
			p.forget(c)
		}
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		c.err = fmt.Errorf("host %s: connection pool is closed", t.Name)
		return
	}
	c.client = client
	p.order = append(p.order, c)
	p.mu.Unlock()
	interval, maxMissed := p.cfg.Keepalive, 3
	if t.Keepalive > 0 {
		interval = t.Keepalive
	}
	if t.KeepaliveMax > 0 {
		maxMissed = t.KeepaliveMax
	}
	go c.watch(interval, maxMissed)
}

func (p *Pool) forget(c *sshConn) {
	p.mu.Lock()
	if p.conns[c.key] == c {
		delete(p.conns, c.key)
	}
	p.mu.Unlock()
}

// dial connects to t (through parent if set) with dialOnce, holding one
// of the pool's handshake slots for each attempt, and tries again after a
// backoff while the failure is transient and ConnectRetries allow (see
// dialWithRetries). Waiting for a slot does not count against
// ConnectTimeout; ctx bounds it.
func (p *Pool) dial(ctx context.Context, t Target, parent *sshConn) (*ssh.Client, error) {
	addr := addrOf(t)
	return dialWithRetries(ctx, p.retry, t.Name, addr, func(ctx context.Context) (*ssh.Client, error) {
		release, err := p.gate.acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("host %s (%s): waiting for a handshake slot (tuning.max_handshakes): %w", t.Name, addr, err)
		}
		defer release()
		return p.dialOnce(ctx, t, parent)
	})
}

// dialOnce connects to t (through parent if set): TCP (or a forward
// through the parent), then the SSH handshake, all bounded by
// ConnectTimeout. t has its defaults (withDefaults).
func (p *Pool) dialOnce(ctx context.Context, t Target, parent *sshConn) (*ssh.Client, error) {
	addr := addrOf(t)
	timeout := t.ConnectTimeout
	unreach := func(phase string, err error) error {
		return &UnreachableError{Host: t.Name, Addr: addr, Phase: phase, Err: err}
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var nc net.Conn
	var err error
	if parent == nil {
		var d net.Dialer
		network := t.Network
		if network == "" {
			network = "tcp"
		}
		nc, err = d.DialContext(dctx, network, addr)
	} else {
		nc, err = parent.client.DialContext(dctx, "tcp", addr)
		if err != nil && parent.deadErr() != nil {
			err = fmt.Errorf("%w (jump host %s lost: %v)", err, parent.name, parent.deadErr())
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("host %s (%s): connect: %w", t.Name, addr, ctx.Err())
		}
		if dctx.Err() != nil {
			err = &dialTimeoutError{timeout: timeout, err: err}
		}
		if parent != nil {
			err = fmt.Errorf("through jump host %s: %w", parent.name, err)
		}
		return nil, unreach(PhaseConnect, err)
	}
	// x/crypto's handshake has no timeout of its own: a deadline on the
	// conn (TCP) plus closing the conn when dctx ends (works for forwarded
	// channels too, which have no deadlines).
	_ = nc.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(dctx, func() { nc.Close() })

	hk := &hostKeyCheck{pool: p, t: t, addr: addr}
	cb, algos := hk.callback()
	auth := p.authMethods(t)
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              auth.methods,
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	auth.close()
	fired := !stop()
	if err != nil {
		nc.Close()
		switch {
		case hk.err != nil:
			return nil, unreach(PhaseHostKey, hk.err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("host %s (%s): handshake: %w", t.Name, addr, ctx.Err())
		case fired || errors.Is(err, os.ErrDeadlineExceeded):
			return nil, unreach(PhaseHandshake, &dialTimeoutError{handshake: true, timeout: timeout, err: err})
		case auth.authStarted() || strings.Contains(err.Error(), "unable to authenticate"):
			// The key exchange is done and the server asked for
			// credentials: whatever ended the handshake now (no method
			// left, or sshd's MaxAuthTries disconnect) is an auth failure.
			return nil, unreach(PhaseAuth, auth.authError(t, addr, err))
		}
		if auth.err != nil {
			return nil, unreach(PhaseAuth, auth.authError(t, addr, err))
		}
		return nil, unreach(PhaseHandshake, err)
	}
	if fired {
		sc.Close()
		return nil, unreach(PhaseHandshake, &dialTimeoutError{handshake: true, timeout: timeout})
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// watch sends keepalives and notices the end of the connection. A peer
// that misses maxMissed replies in a row is dead: the client is closed so
// every waiter errors out.
func (c *sshConn) watch(interval time.Duration, maxMissed int) {
	waitDone := make(chan error, 1)
	go func() { waitDone <- c.client.Wait() }()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	replies := make(chan error, 1)
	inflight, missed := false, 0
	for {
		select {
		case err := <-waitDone:
			if err == nil {
				err = errors.New("connection closed")
			}
			c.setDead(&UnreachableError{Host: c.name, Addr: c.addr, Phase: PhaseKeepalive, Err: err})
			close(c.done)
			return
		case err := <-replies:
			inflight = false
			missed = 0
			if err != nil {
				c.setDead(&UnreachableError{Host: c.name, Addr: c.addr, Phase: PhaseKeepalive, Err: err})
				c.client.Close()
			}
		case <-tick.C:
			if inflight {
				missed++
				if missed >= maxMissed {
					c.setDead(&UnreachableError{Host: c.name, Addr: c.addr, Phase: PhaseKeepalive,
						Err: fmt.Errorf("no reply to %d keepalives sent every %s", missed, interval)})
					c.client.Close()
				}
				continue
			}
			inflight = true
			go func() {
				_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
				replies <- err
			}()
		}
	}
}

func (c *sshConn) setDead(err error) {
	c.mu.Lock()
	if c.dead == nil {
		c.dead = err
	}
	c.mu.Unlock()
}

func (c *sshConn) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// lost returns the connection-lost error if the connection is gone, else
// err (wrapped with the host).
func (c *sshConn) lost(err error) error {
	select {
	case <-c.done:
		if d := c.deadErr(); d != nil {
			return d
		}
	case <-time.After(50 * time.Millisecond):
		// A shell or channel can fail just before the connection's Wait
		// returns; give it a moment so the caller sees "unreachable".
		if d := c.deadErr(); d != nil {
			return d
		}
	}
	return err
}

func (c *sshConn) close() error {
	c.mu.Lock()
	shells := c.shells
	sftps := c.sftps
	c.shells = map[string]*shellSlot{}
	c.sftps = map[string]*sftpSlot{}
	if c.dead == nil {
		c.dead = &UnreachableError{Host: c.name, Addr: c.addr, Phase: PhaseKeepalive, Err: errors.New("connection pool closed")}
	}
	c.mu.Unlock()
	for _, s := range sftps {
		s.close()
	}
	for _, s := range shells {
		s.close()
	}
	if c.client != nil {
		err := c.client.Close()
		if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "use of closed") {
			return fmt.Errorf("host %s: close: %w", c.name, err)
		}
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // cannot happen on Linux
	}
	return hex.EncodeToString(b)
}
