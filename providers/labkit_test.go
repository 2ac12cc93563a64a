package providers

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
)

// noSFTPSpec is a lab host whose uploads must go through the persistent
// shell: sshd's sftp subsystem points nowhere. Run removeSFTPServers on it
// as root too, so that sftp_server.sh finds no sftp-server either.
func noSFTPSpec(name string) lab.HostSpec {
	return lab.HostSpec{Name: name, SSHDOptions: []string{"Subsystem sftp /nonexistent/sftp-server"}}
}

// removeSFTPServers deletes sftp-server from every place sftp_server.sh
// looks for it.
const removeSFTPServers = "for f in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server /usr/local/libexec/sftp-server /usr/local/lib/sftp-server /usr/sbin/sftp-server; do rm -f $f; done"

// labKit gives a provider test root shells on a started lab's hosts and
// SSH connections to them from one pool (closed when the test ends).
type labKit struct {
	ctx  context.Context
	l    *lab.Lab
	pool *connection.Pool
}

func newLabKit(t *testing.T, ctx context.Context, l *lab.Lab) *labKit {
	pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
	t.Cleanup(func() { pool.Close() })
	return &labKit{ctx: ctx, l: l, pool: pool}
}

// root returns a function that runs a script as root on host name (in its
// namespaces, not over SSH) and returns its output; a failure fails the
// test.
func (k *labKit) root(name string) func(t *testing.T, script string) string {
	return func(t *testing.T, script string) string {
		t.Helper()
		out, err := k.l.Host(name).Exec(k.ctx, script)
		if err != nil {
			t.Fatalf("%s: %s: %v: %s", name, script, err, out)
		}
		return string(out)
	}
}

// connect logs in to host name as user with the lab's client key, host
// keys checked; sudoUser set means every command runs under sudo as that
// user.
func (k *labKit) connect(t *testing.T, name, user, sudoUser string) *connection.SSHHost {
	t.Helper()
	lh := k.l.Host(name)
	h, err := k.pool.Host(k.ctx, connection.Target{Name: name, Address: lh.Addr, Port: lh.Port, User: user, Sudo: sudoUser != "", SudoUser: sudoUser,
		PrivateKey: k.l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	return h
}

// localRoot returns a function that runs a script with sh on this
// machine and returns its output; a failure fails the test.
func localRoot(ctx context.Context) func(t *testing.T, script string) string {
	return func(t *testing.T, script string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("local: %s: %v: %s", script, err, out)
		}
		return string(out)
	}
}
