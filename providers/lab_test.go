package providers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
)

// labHost is a Host over a lab host's namespaces (nsenter), as root:
// stdout and stderr apart, exit status in the Result.
type labHost struct{ pid int }

func (h *labHost) Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error) {
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(h.pid), "-m", "-u", "-p", "-n", "--", "/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root"}
	cmd.Dir = "/"
	cmd.Stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := connection.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
	case err != nil:
		return res, err
	}
	return res, nil
}

func (h *labHost) Upload(ctx context.Context, dst string, r io.Reader, size int64, opts connection.UploadOptions) error {
	mode := uint32(opts.Mode.Perm())
	if mode == 0 {
		mode = 0o644
	}
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\numask 077\ntmp=$(mktemp %s)\ntrap 'rm -f \"$tmp\"' EXIT\ncat > \"$tmp\"\n", shell.Quote(path.Dir(dst)+"/.opsmop.XXXXXX"))
	if c := chownCmd(opts.Owner, opts.Group, false, "PLACEHOLDER"); c != "" {
		b.WriteString(strings.Replace(c, "PLACEHOLDER", "\"$tmp\"", 1) + "\n")
	}
	fmt.Fprintf(&b, "chmod %o \"$tmp\"\nmv -f \"$tmp\" %s\ntrap - EXIT\n", mode, shell.Quote(dst))
	res, err := h.Run(ctx, b.String(), io.LimitReader(r, size))
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("upload %s: exit %d: %s", dst, res.ExitCode, res.Stderr)
	}
	return nil
}

// exec runs a script on the host for assertions and fails the test on a
// non-zero exit.
func (h *labHost) exec(t *testing.T, script string) string {
	t.Helper()
	res, err := h.Run(testCtx(t), script, nil)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%s: %v exit %d: %s", script, err, res.ExitCode, res.Stderr)
	}
	return string(res.Stdout)
}

// snap returns a function describing what script prints on the host.
func (h *labHost) snap(t *testing.T, script string) func() string {
	return func() string { return h.exec(t, script) }
}

// TestOnLabHost runs the package, group, user and service (sysv)
// providers against a real throwaway host of the lab: its own /etc, /var
// and /usr, so dpkg and useradd there do not touch this machine.
func TestOnLabHost(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 30, Hosts: []lab.HostSpec{{Name: "p1", Group: "g"}}})
	h := &labHost{pid: l.Host("p1").PID}
	facts := map[string]any{"pkg_manager": "apt", "init_system": "sysv"}
	req := func(spec any, dir string) *Request {
		r := newReq(spec, dir, nil, nil)
		r.Facts = facts
		return r
	}

	t.Run("package", func(t *testing.T) {
		dir := t.TempDir()
		v1 := buildDeb(t, dir, "opsmop-test", "1.0", "gzip")
		v2 := buildDeb(t, dir, "opsmop-test", "2.0", "gzip")
		snap := h.snap(t, "sha256sum /var/lib/dpkg/status; ls -la --time-style=full-iso /var/lib/dpkg /var/cache/apt /usr/share | sha256sum")
		const hello = "/usr/share/opsmop-test/hello.txt"

		ch := converge(t, h, mustProvider("package"), req(&PackageSpec{Name: []string{"opsmop-test"}, Src: v1}, dir), snap, Create)
		if got := fieldMap(ch)["opsmop-test"]; got != "absent -> 1.0" {
			t.Errorf("field: got %q; want %q", got, "absent -> 1.0")
		}
		if got := h.exec(t, "cat "+hello); got != "hello from opsmop-test 1.0\n" {
			t.Errorf("installed file: got %q", got)
		}
		if _, err := os.Stat(hello); err == nil {
			t.Fatalf("%s exists on this machine: the lab host is not isolated", hello)
		}
		if left := h.exec(t, "ls -d /tmp/opsmop.* 2>/dev/null || true"); left != "" {
			t.Errorf("temp dirs left on the host: %s", left)
		}

		ch = converge(t, h, mustProvider("package"), req(&PackageSpec{Name: []string{"opsmop-test"}, Src: v2}, dir), snap, Update)
		if got := fieldMap(ch)["opsmop-test"]; got != "1.0 -> 2.0" {
			t.Errorf("field: got %q; want %q", got, "1.0 -> 2.0")
		}
		if got := h.exec(t, "dpkg-query -W -f '${Version}' opsmop-test"); got != "2.0" {
			t.Errorf("installed version: got %q; want 2.0", got)
		}
		// present without src, and latest (apt-cache policy): already there.
		converge(t, h, mustProvider("package"), req(&PackageSpec{Name: []string{"opsmop-test"}}, dir), snap, None)
		converge(t, h, mustProvider("package"), req(&PackageSpec{Name: []string{"opsmop-test"}, State: "latest"}, dir), snap, None)

		converge(t, h, mustProvider("package"), req(&PackageSpec{Name: []string{"opsmop-test"}, State: "absent"}, dir), snap, Delete)
		if out := h.exec(t, "test -e "+hello+" && echo present || echo gone"); out != "gone\n" {
			t.Errorf("after absent: %s is %s", hello, out)
		}

		// An xz-compressed .deb: only presence can be checked, and check says so.
		xz := buildDeb(t, dir, "opsmop-test-xz", "1.0", "xz")
		converge(t, h, mustProvider("package"), req(&PackageSpec{Name: []string{"opsmop-test-xz"}, Src: xz}, dir), snap, Create)
		ch2, err := check(t, testCtx(t), h, mustProvider("package"), req(&PackageSpec{Name: []string{"opsmop-test-xz"}, Src: xz}, dir))
		if err != nil || !strings.Contains(ch2.Message, "only the presence") {
			t.Errorf("xz deb: got %v, %v; want a message that only presence is checked", ch2, err)
		}
	})

	accounts := "sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow; ls -la --time-style=full-iso /home"
	t.Run("group", func(t *testing.T) {
		snap := h.snap(t, accounts)
		converge(t, h, mustProvider("group"), req(&GroupSpec{Name: "opsg1", GID: ptr(4100)}, ""), snap, Create)
		converge(t, h, mustProvider("group"), req(&GroupSpec{Name: "opsg2", System: true}, ""), snap, Create)
		ch := converge(t, h, mustProvider("group"), req(&GroupSpec{Name: "opsg1", GID: ptr(4101)}, ""), snap, Update)
		if got := fieldMap(ch)["gid"]; got != "4100 -> 4101" {
			t.Errorf("gid field: got %q", got)
		}
		if got := h.exec(t, "getent group opsg1 | cut -d: -f3"); got != "4101\n" {
			t.Errorf("gid: got %q; want 4101", got)
		}
		converge(t, h, mustProvider("group"), req(&GroupSpec{Name: "opsg3"}, ""), snap, Create)
		converge(t, h, mustProvider("group"), req(&GroupSpec{Name: "opsg3", State: "absent"}, ""), snap, Delete)
	})

	t.Run("user", func(t *testing.T) {
		snap := h.snap(t, accounts)
		const hash = "$6$opsmopsalt$BXHAfHi.A4T5XkUDmJCMb42EibNJuyj6aX0siA6V7R4.g93Oq1euNRDvBDHkYdMWF5Oav89B/g3szLF75rM7q0"
		ch := converge(t, h, mustProvider("user"), req(&UserSpec{Name: "alice", UID: ptr(4200), Groups: []string{"opsg1"},
			Shell: "/bin/sh", Comment: "Alice Example", Password: hash}, ""), snap, Create)
		for _, f := range ch.Fields {
			if strings.Contains(f.Before+f.After, "$6$") {
				t.Errorf("field %s shows the password hash", f.Name)
			}
		}
		if got := h.exec(t, "getent passwd alice"); got != "alice:x:4200:4200:Alice Example:/home/alice:/bin/sh\n" {
			t.Errorf("passwd: got %q", got)
		}
		if got := h.exec(t, "getent shadow alice | cut -d: -f2"); got != hash+"\n" {
			t.Errorf("shadow: got %q; want the hash", got)
		}
		if got := h.exec(t, "test -d /home/alice && echo yes"); got != "yes\n" {
			t.Errorf("home not created")
		}

		ch = converge(t, h, mustProvider("user"), req(&UserSpec{Name: "alice", Shell: "/bin/bash", Groups: []string{"opsg1", "opsg2"}}, ""), snap, Update)
		if got := fieldMap(ch); got["shell"] != "/bin/sh -> /bin/bash" || got["groups"] != "opsg1 -> opsg1,opsg2" {
			t.Errorf("fields: got %v", got)
		}
		if got := h.exec(t, "id -Gn alice"); got != "alice opsg1 opsg2\n" {
			t.Errorf("groups: got %q", got)
		}
		// append leaves other memberships alone; exact groups remove them.
		converge(t, h, mustProvider("user"), req(&UserSpec{Name: "alice", Groups: []string{"opsg2"}, Append: true}, ""), snap, None)
		converge(t, h, mustProvider("user"), req(&UserSpec{Name: "alice", Groups: []string{"opsg2"}}, ""), snap, Update)
		if got := h.exec(t, "id -Gn alice"); got != "alice opsg2\n" {
			t.Errorf("groups after exact set: got %q", got)
		}
		converge(t, h, mustProvider("user"), req(&UserSpec{Name: "alice", State: "absent"}, ""), snap, Delete)
		if out := h.exec(t, "getent passwd alice || echo none"); out != "none\n" {
			t.Errorf("after absent: %q", out)
		}
		if _, err := exec.Command("getent", "passwd", "alice").Output(); err == nil {
			t.Error("user alice exists on this machine: the lab host is not isolated")
		}
	})

	// A template whose every rendering differs converges: the bytes
	// diffed are the bytes uploaded are the bytes re-checked.
	t.Run("template rendering the time", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "stamp.tmpl"), []byte("stamp {{ now.UnixNano }}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		withNow := func(r *Request) *Request {
			r.Render = func(p string) ([]byte, error) {
				tm, err := template.New(p).Funcs(template.FuncMap{"now": time.Now}).ParseFiles(filepath.Join(dir, p))
				if err != nil {
					return nil, err
				}
				var b bytes.Buffer
				err = tm.ExecuteTemplate(&b, path.Base(p), nil)
				return b.Bytes(), err
			}
			return r
		}
		h.exec(t, "mkdir -p /srv/stamp")
		snap := h.snap(t, "ls -la --time-style=full-iso /srv/stamp; cat /srv/stamp/* 2>/dev/null; true")
		for _, c := range []struct {
			typ, path string
			spec      any
		}{
			{"template", "/srv/stamp/template", &TemplateSpec{Src: "stamp.tmpl", Path: "/srv/stamp/template"}},
			{"file", "/srv/stamp/file", &FileSpec{Path: "/srv/stamp/file", Template: "stamp.tmpl", State: "present"}},
		} {
			ch := converge(t, h, mustProvider(c.typ), withNow(req(c.spec, dir)), snap, Create)
			got := h.exec(t, "cat "+c.path)
			if !strings.HasPrefix(got, "stamp ") || !strings.Contains(ch.Diff, "+"+got) {
				t.Errorf("%s %s: got %q on the host; want the contents the check diffed:\n%s", c.typ, c.path, got, ch.Diff)
			}
		}
	})

	t.Run("service sysv", func(t *testing.T) {
		h.exec(t, "cat > /etc/init.d/opsmop-svc <<'EOF'\n"+initScript+"EOF\nchmod 755 /etc/init.d/opsmop-svc\nrm -f /var/lib/opsmop-svc.log")
		snap := h.snap(t, "ls -la --time-style=full-iso /etc/rc2.d /etc/rc3.d /var/lib; cat /var/lib/opsmop-svc.pid 2>/dev/null; cat /var/lib/opsmop-svc.log 2>/dev/null; true")
		running := func() bool {
			res, _ := h.Run(testCtx(t), "/etc/init.d/opsmop-svc status", nil)
			return res.ExitCode == 0
		}

		ch := converge(t, h, mustProvider("service"), req(&ServiceSpec{Service: "opsmop-svc", State: "started", Enabled: ptr(true)}, ""), snap, Update)
		if got := fieldMap(ch); got["state"] != "stopped -> running" || got["enabled"] != "false -> true" {
			t.Errorf("fields: got %v", got)
		}
		if !running() {
			t.Error("not running after started")
		}
		if out := h.exec(t, "ls /etc/rc2.d | grep -c 'S..opsmop-svc' || true"); out != "1\n" {
			t.Errorf("rc2.d start links: got %q; want 1", out)
		}

		convergeAgain(t, h, mustProvider("service"), req(&ServiceSpec{Service: "opsmop-svc", State: "restarted"}, ""), snap, Run, Run)
		convergeAgain(t, h, mustProvider("service"), req(&ServiceSpec{Service: "opsmop-svc", State: "reloaded"}, ""), snap, Run, Run)
		if got := h.exec(t, "cat /var/lib/opsmop-svc.log"); got != "start\nstop\nstart\nreload\n" {
			t.Errorf("service log: got %q", got)
		}
		if !running() {
			t.Error("not running after restart")
		}

		converge(t, h, mustProvider("service"), req(&ServiceSpec{Service: "opsmop-svc", State: "stopped", Enabled: ptr(false)}, ""), snap, Update)
		if running() {
			t.Error("still running after stopped")
		}
		if out := h.exec(t, "ls /etc/rc2.d | grep -c 'S..opsmop-svc' || true"); out != "0\n" {
			t.Errorf("rc2.d start links after disable: got %q; want 0", out)
		}

		// A missing service: check says so, apply fails clearly.
		ch, err := check(t, testCtx(t), h, mustProvider("service"), req(&ServiceSpec{Service: "opsmop-nosuch", State: "started"}, ""))
		if err != nil || !strings.Contains(ch.Message, "not found") {
			t.Fatalf("missing service: got %v, %v; want a not-found message", ch, err)
		}
		if _, err := mustProvider("service").Apply(testCtx(t), h, req(&ServiceSpec{Service: "opsmop-nosuch", State: "started"}, ""), ch); err == nil {
			t.Error("starting a missing service: got no error")
		}
	})
}

// initScript is a minimal LSB init script: start runs a sleeping daemon
// and writes its pid; every action is logged.
const initScript = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          opsmop-svc
# Required-Start:
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: opsmop test service
### END INIT INFO
PIDFILE=/var/lib/opsmop-svc.pid
LOG=/var/lib/opsmop-svc.log
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
do_start() { running && return 0; sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > "$PIDFILE"; echo start >> "$LOG"; }
do_stop() { if running; then kill "$(cat "$PIDFILE")"; fi; rm -f "$PIDFILE"; echo stop >> "$LOG"; }
case "$1" in
start) do_start ;;
stop) do_stop ;;
restart) do_stop; do_start ;;
reload) running || exit 7; echo reload >> "$LOG" ;;
status) running || exit 3 ;;
*) echo "usage: $0 start|stop|restart|reload|status" >&2; exit 2 ;;
esac
`
