package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/defaults"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// hostKey names one host under one role: connection settings depend on
// both.
type hostKey struct {
	role *policy.Role
	host string
}

// hostConn is what connecting to a host under a role needs, resolved once
// (session.resolve).
type hostConn struct {
	settings defaults.Settings
	// target is settings as a connection target, its jump hosts included.
	target connection.Target
}

// hostConns are the resolved connections of a run, by role and host.
type hostConns map[hostKey]hostConn

// connector connects hosts for the engine: SSH through one pool, or the
// local machine. It never resolves settings: it is given them.
type connector struct {
	hosts   hostConns
	local   bool   // --local: every host is this machine
	curUser string // the user running opsmop
	pool    *connection.Pool
	mu      sync.Mutex
	locs    map[string]*connection.Local
}

// newConnector returns a connector for the resolved hosts (nil for one
// that only calls open). The caller must Close it.
func (s *session) newConnector(hosts hostConns, acceptNewHostKeys bool) *connector {
	return &connector{
		hosts:   hosts,
		local:   s.local,
		curUser: s.curUser,
		locs:    map[string]*connection.Local{},
		pool: connection.NewPool(connection.PoolConfig{
			KnownHostsFiles:   slices.Concat(s.knownHostsFiles()),
			AcceptNewHostKeys: acceptNewHostKeys,
			UseAgent:          true,
			Passphrase:        s.passphrasePrompt,
			Warn:              s.env.Stderr,
			Keepalive:         keepaliveInterval(s.defs),
			MaxHandshakes:     maxHandshakes(s.defs),
			ConnectRetries:    connectRetries(s.defs),
		}),
	}
}

// Close closes every SSH connection the connector opened.
func (c *connector) Close() { c.pool.Close() }

// Connect implements engine.Connector with the settings resolved for
// (role, host) when the run was planned.
func (c *connector) Connect(ctx context.Context, role *policy.Role, h *engine.HostInfo) (providers.Host, error) {
	hc, ok := c.hosts[hostKey{role: role, host: h.Name}]
	if !ok {
		return nil, fmt.Errorf("host %s: no connection settings for role %q: the host is not in the run's plan (an opsmop bug; please report it)", h.Name, role.Name)
	}
	return c.open(ctx, hc)
}

// open connects to a resolved host: the local machine (--local or
// opsmop_connection=local), else over SSH through the pool.
func (c *connector) open(ctx context.Context, hc hostConn) (providers.Host, error) {
	st := hc.settings
	if c.local || st.Connection == defaults.ConnectionLocal {
		c.mu.Lock()
		defer c.mu.Unlock()
		key := fmt.Sprintf("%s/%v/%s", st.Host, st.Sudo, st.SudoUser)
		if l, ok := c.locs[key]; ok {
			return l, nil
		}
		l := &connection.Local{Sudo: st.Sudo && st.SudoUser != "" && st.SudoUser != c.curUser, SudoUser: st.SudoUser, CommandTimeout: st.CommandTimeout}
		c.locs[key] = l
		return l, nil
	}
	return c.pool.Host(ctx, hc.target)
}

// keepaliveInterval is connect_timeout (at most 15 s, the pool's
// default): the pool declares a peer dead after three unanswered
// keepalives, so a host that stops answering in the middle of a run
// (network cut, frozen machine) is reported unreachable after 3-4 times
// connect_timeout. Not less: a keepalive reply queues behind the upload
// data in flight (up to a 2 MiB window), and a shorter interval would
// declare hosts on slow links dead in the middle of large uploads.
func keepaliveInterval(defs *defaults.File) time.Duration {
	ct := defaults.DefaultConnectTimeout
	if defs != nil && defs.Tuning.ConnectTimeout > 0 {
		ct = defs.Tuning.ConnectTimeout
	}
	return min(ct, 15*time.Second)
}

// maxHandshakes is tuning.max_handshakes as connection.PoolConfig wants
// it: unset is 0 (the pool's default, connection.DefaultMaxHandshakes),
// and the file's 0 (no bound) is -1.
func maxHandshakes(defs *defaults.File) int {
	if defs == nil || defs.Tuning.MaxHandshakes == nil {
		return 0
	}
	if n := *defs.Tuning.MaxHandshakes; n > 0 {
		return n
	}
	return -1
}

// connectRetries is tuning.connect_retries, else
// defaults.DefaultConnectRetries.
func connectRetries(defs *defaults.File) int {
	if defs == nil || defs.Tuning.ConnectRetries == nil {
		return defaults.DefaultConnectRetries
	}
	return *defs.Tuning.ConnectRetries
}
