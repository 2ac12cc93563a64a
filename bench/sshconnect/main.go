// Command sshconnect opens one opsmop SSH connection (package connection:
// TCP connect, handshake, host key check, public key authentication) to
// each address given, runs nothing, and closes it. The benchmark uses it
// to count, through bench/latencyproxy, the round trips that opsmop's
// handshake alone costs.
//
//	sshconnect -user root -key id_ed25519 -known-hosts known_hosts 127.85.0.1:2222 [ADDR:PORT ...]
//
// The connections are made one after the other; the exit status is 1 if
// any failed (each failure is printed on stderr).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/opsmop/opsmop/connection"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sshconnect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "root", "login user")
	key := fs.String("key", "", "private key file (required)")
	kh := fs.String("known-hosts", "", "known_hosts file holding the hosts' keys (required)")
	timeout := fs.Duration("timeout", 10*time.Second, "connect timeout per host")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *key == "" || *kh == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "sshconnect: need -key FILE, -known-hosts FILE and at least one ADDR:PORT")
		return 2
	}
	code := 0
	for _, a := range fs.Args() {
		t, err := target(a, *user, *key, *timeout)
		if err == nil {
			err = connect(ctx, t, *kh)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sshconnect: %v\n", err)
			code = 1
		}
	}
	return code
}

// target builds the connection settings for ADDR:PORT.
func target(addrPort, user, key string, timeout time.Duration) (connection.Target, error) {
	host, portStr, err := net.SplitHostPort(addrPort)
	if err != nil {
		return connection.Target{}, fmt.Errorf("%q: want ADDR:PORT: %w", addrPort, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return connection.Target{}, fmt.Errorf("%q: port must be 1-65535", addrPort)
	}
	return connection.Target{
		Name: addrPort, Address: host, Port: port, User: user,
		PrivateKey: key, CheckHostKeys: true, ConnectTimeout: timeout,
	}, nil
}

// connect dials t with a pool of its own (so nothing is shared between
// addresses) and closes it again.
func connect(ctx context.Context, t connection.Target, knownHosts string) error {
	pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{knownHosts}})
	defer pool.Close()
	h, err := pool.Host(ctx, t)
	if err != nil {
		return err
	}
	return h.Close()
}
