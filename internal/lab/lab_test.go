package lab_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
)

// subnet is this package's 127.S block (see Config.Subnet).
const subnet = 10

// snapshot is what of the controller must look the same after a lab ran:
// file contents under the directories the lab users and keys would touch,
// the mount table, the network links and the named network namespaces.
type snapshot struct {
	files  map[string]string
	mounts []string
	links  []string
	netns  string
}

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	s := snapshot{files: map[string]string{}}
	for _, p := range []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/hosts", "/etc/hostname", "/etc/sudoers", "/root/.ssh/authorized_keys"} {
		b, err := os.ReadFile(p)
		if err != nil {
			s.files[p] = "error: " + err.Error()
			continue
		}
		s.files[p] = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	for _, d := range []string{"/home", "/etc/sudoers.d", "/etc/ssh"} {
		ents, _ := os.ReadDir(d)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		s.files[d+"/"] = strings.Join(names, ",")
	}
	for _, p := range []string{"/run/sshd", "/run/netns", "/home/deploy", "/home/ops", "/home/app"} {
		_, err := os.Lstat(p)
		s.files[p] = fmt.Sprintf("exists=%v", err == nil)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && !strings.HasPrefix(f[4], lab.DefaultBase) {
			s.mounts = append(s.mounts, f[4])
		}
	}
	sort.Strings(s.mounts)
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		s.links = append(s.links, i.Name)
	}
	sort.Strings(s.links)
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	s.netns = string(out)
	return s
}

func (s snapshot) diff(o snapshot) []string {
	var d []string
	for k, v := range s.files {
		if o.files[k] != v {
			d = append(d, fmt.Sprintf("%s: got %s; want %s", k, o.files[k], v))
		}
	}
	if strings.Join(s.mounts, " ") != strings.Join(o.mounts, " ") {
		d = append(d, fmt.Sprintf("mount points: got %v; want %v", o.mounts, s.mounts))
	}
	if strings.Join(s.links, " ") != strings.Join(o.links, " ") {
		d = append(d, fmt.Sprintf("network links: got %v; want %v", o.links, s.links))
	}
	if s.netns != o.netns {
		d = append(d, fmt.Sprintf("ip netns list: got %q; want %q", o.netns, s.netns))
	}
	sort.Strings(d)
	return d
}

// sshArgs are the system ssh client's options for a lab: its key, its
// known_hosts, strict host key checking, no prompts.
func sshArgs(l *lab.Lab) []string {
	return []string{"-F", "/dev/null", "-i", l.ClientKey, "-o", "UserKnownHostsFile=" + l.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20"}
}

func runSSH(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// goSSH connects with x/crypto/ssh as user with auth, checking the host key
// against the lab's known_hosts; via, if non-nil, is the jump client.
func goSSH(t *testing.T, l *lab.Lab, h *lab.Host, user string, via *ssh.Client, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	cb, err := knownhosts.New(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: cb, Timeout: 20 * time.Second}
	addr := net.JoinHostPort(h.Addr, strconv.Itoa(h.Port))
	if via == nil {
		return ssh.Dial("tcp", addr, cfg)
	}
	conn, err := via.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

func keyAuth(t *testing.T, l *lab.Lab) ssh.AuthMethod {
	t.Helper()
	b, err := os.ReadFile(l.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.PublicKeys(s)
}

// run runs cmd in a new session of c with stdin, returning combined output.
func run(c *ssh.Client, cmd, stdin string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	s.Stdin = strings.NewReader(stdin)
	out, err := s.CombinedOutput(cmd)
	return strings.TrimSpace(string(out)), err
}

func TestLab(t *testing.T) {
	labtest.Require(t)
	before := takeSnapshot(t)
	t0 := time.Now()
	l, err := lab.Start(t.Context(), lab.Config{Subnet: subnet, Hosts: []lab.HostSpec{
		{Name: "web1", Group: "webservers"},
		{Name: "bastion", Group: "bastions"},
		{Name: "db1", Group: "dbservers", Via: "bastion"},
	}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start (3 hosts) took %v", time.Since(t0))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = l.Stop()
		}
	})
	web1, bastion, db1 := l.Host("web1"), l.Host("bastion"), l.Host("db1")
	if web1 == nil || bastion == nil || db1 == nil || l.Host("nope") != nil {
		t.Fatalf("Host lookup: got web1=%v bastion=%v db1=%v; want all three and nil for an unknown name", web1, bastion, db1)
	}
	if got, want := db1.Addr, "10.10.0.2"; got != want {
		t.Errorf("db1.Addr: got %s; want %s", got, want)
	}
	var pidNS []string
	for _, h := range l.Hosts {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", h.PID))
		if err != nil {
			t.Fatalf("host %s pid %d: %v", h.Name, h.PID, err)
		}
		pidNS = append(pidNS, ns)
	}

	t.Run("ssh hostname", func(t *testing.T) {
		for _, h := range []*lab.Host{web1, bastion} {
			out, err := runSSH(t, append(sshArgs(l), "root@"+h.Addr, "hostname")...)
			if err != nil || out != h.Name {
				t.Errorf("ssh root@%s hostname: got %q, %v; want %q", h.Addr, out, err, h.Name)
			}
		}
		// -J passes -F but not -o options to the jump ssh, so the jump
		// goes through the lab's ssh_config.
		out, err := runSSH(t, "-F", l.SSHConfig, "-o", "BatchMode=yes", "-J", "root@"+bastion.Name, "root@"+db1.Addr, "hostname")
		if err != nil || out != "db1" {
			t.Errorf("ssh -J bastion root@%s hostname: got %q, %v; want %q", db1.Addr, out, err, "db1")
		}
		out, err = runSSH(t, "-F", l.SSHConfig, "-o", "BatchMode=yes", "db1", "hostname")
		if err != nil || out != "db1" {
			t.Errorf("ssh -F ssh_config db1 hostname: got %q, %v; want %q", out, err, "db1")
		}
		b, _ := os.ReadFile(web1.Log)
		if !bytes.Contains(b, []byte("Accepted publickey for root")) {
			t.Errorf("web1 log %s: got no \"Accepted publickey for root\" line; log:\n%s", web1.Log, b)
		}
	})

	t.Run("users and sudo", func(t *testing.T) {
		pw := l.DeployPassword.Reveal()
		if b, err := os.ReadFile(l.DeployPasswordFile); err != nil || string(b) != pw+"\n" {
			t.Errorf("deploy password file: got %v; want the password and a newline", err)
		}
		if fi, err := os.Stat(l.DeployPasswordFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("deploy password file mode: got %v, %v; want 0600", fi.Mode().Perm(), err)
		}
		if s := fmt.Sprintf("%v %+v %#v", l.DeployPassword, l, l); strings.Contains(s, pw) {
			t.Errorf("printing the lab shows the deploy password")
		}
		bad := pw + "x"
		if c, err := goSSH(t, l, web1, "deploy", nil, ssh.Password(bad)); err == nil {
			c.Close()
			t.Errorf("deploy with a wrong password: got a connection; want auth failure")
		}
		jump, err := goSSH(t, l, bastion, "root", nil, keyAuth(t, l))
		if err != nil {
			t.Fatalf("root@bastion by key: %v", err)
		}
		defer jump.Close()
		for _, tc := range []struct {
			h   *lab.Host
			via *ssh.Client
		}{{web1, nil}, {db1, jump}} {
			c, err := goSSH(t, l, tc.h, "deploy", tc.via, ssh.Password(pw))
			if err != nil {
				t.Fatalf("deploy@%s by password: %v", tc.h.Name, err)
			}
			if out, err := run(c, "id -un", ""); err != nil || out != "deploy" {
				t.Errorf("%s: id -un as deploy: got %q, %v; want deploy", tc.h.Name, out, err)
			}
			if out, err := run(c, "sudo -n true", ""); err == nil || !strings.Contains(out, "password is required") {
				t.Errorf("%s: deploy sudo -n: got %q, %v; want \"a password is required\"", tc.h.Name, out, err)
			}
			if out, err := run(c, "sudo -S -p '' id -u", pw+"\n"); err != nil || out != "0" {
				t.Errorf("%s: deploy sudo -S with the password: got %q, %v; want 0", tc.h.Name, out, err)
			}
			// A wrong password costs pam_unix's 2 s failure delay: once.
			if tc.via == nil {
				if out, err := run(c, "sudo -S -p '' id -u", bad+"\n"); err == nil || strings.Contains(out, "0") {
					t.Errorf("%s: deploy sudo -S with a wrong password: got %q, %v; want failure", tc.h.Name, out, err)
				}
			}
			c.Close()
		}
		for _, tc := range []struct {
			user, cmd, want string
			ok              bool
		}{
			{"ops", "sudo -n id -u", "0", true},
			{"app", "sudo -n true", "password is required", false},
			{"app", "id -un", "app", true},
			{"root", "id -u", "0", true},
		} {
			c, err := goSSH(t, l, web1, tc.user, nil, keyAuth(t, l))
			if err != nil {
				t.Fatalf("%s@web1 by key: %v", tc.user, err)
			}
			out, err := run(c, tc.cmd, "")
			c.Close()
			if (err == nil) != tc.ok || !strings.Contains(out, tc.want) {
				t.Errorf("%s: %s: got %q, %v; want %q (success %v)", tc.user, tc.cmd, out, err, tc.want, tc.ok)
			}
		}
	})

	t.Run("isolation", func(t *testing.T) {
		const marker = "/etc/opsmop-lab-test-marker"
		if _, err := web1.Exec(t.Context(), "echo web1 >"+marker); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(web1.Upper, marker)); err != nil || string(b) != "web1\n" {
			t.Errorf("web1 upper dir: got %q, %v; want the marker file", b, err)
		}
		if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("controller %s: got %v; want it not to exist", marker, err)
		}
		for _, h := range []*lab.Host{bastion, db1} {
			if out, err := h.Exec(t.Context(), "test ! -e "+marker+" && hostname"); err != nil || strings.TrimSpace(string(out)) != h.Name {
				t.Errorf("%s: marker of web1 visible or Exec failed: got %q, %v", h.Name, out, err)
			}
		}
		// Each host sees only its own processes; pid 1 is its sshd (the
		// acceptor for the bastion).
		for _, tc := range []struct {
			h    *lab.Host
			init string
		}{{web1, "sshd"}, {bastion, "perl"}, {db1, "sshd"}} {
			out, err := tc.h.Exec(t.Context(), "cat /proc/1/comm; ls /proc | grep -c '^[0-9]'")
			f := strings.Fields(string(out))
			if err != nil || len(f) != 2 || f[0] != tc.init {
				t.Fatalf("%s: got %q, %v; want pid 1 %s and a process count", tc.h.Name, out, err, tc.init)
			}
			if n, _ := strconv.Atoi(f[1]); n < 1 || n > 20 {
				t.Errorf("%s: got %d processes in its /proc; want only the host's own few", tc.h.Name, n)
			}
		}
		// Exec failures carry the exit status and output.
		out, err := web1.Exec(t.Context(), "echo oops; exit 3")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || strings.TrimSpace(string(out)) != "oops" {
			t.Errorf("Exec of a failing script: got %q, %v; want output oops and exit status 3", out, err)
		}
		out, err = db1.ExecInput(t.Context(), "cat", strings.NewReader("fed"))
		if err != nil || string(out) != "fed" {
			t.Errorf("ExecInput: got %q, %v; want fed", out, err)
		}
	})

	t.Run("private host unreachable from the controller", func(t *testing.T) {
		// The lab creates no interface in the controller's network
		// namespace and no address in 10.S.0.0/16 there: the only way to
		// db1 is through the bastion. (No plain dial: with a default route
		// it would send a packet to the real network.)
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
			addrs, _ := i.Addrs()
			for _, a := range addrs {
				if strings.HasPrefix(a.String(), "10.10.") {
					t.Errorf("controller interface %s has lab address %s", i.Name, a)
				}
			}
		}
		sort.Strings(names)
		if strings.Join(names, " ") != strings.Join(before.links, " ") {
			t.Errorf("controller links: got %v; want %v (unchanged)", names, before.links)
		}
		// A dial that may only use the controller's loopback fails.
		d := net.Dialer{Timeout: 500 * time.Millisecond, Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.BindToDevice(int(fd), "lo") })
			if err != nil {
				return err
			}
			return serr
		}}
		if c, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort(db1.Addr, "22")); err == nil {
			c.Close()
			t.Errorf("direct dial to %s:22 from the controller: got a connection; want failure", db1.Addr)
		}
		// The bastion, from its own namespace, does reach it.
		probe := "exec 3<>/dev/tcp/" + db1.Addr + "/22 && head -c 4 <&3"
		if out, err := bastion.Exec(t.Context(), "bash -c "+shell.Quote(probe)); err != nil || string(out) != "SSH-" {
			t.Errorf("bastion -> db1:22: got %q, %v; want an SSH banner", out, err)
		}
	})

	t.Run("signal", func(t *testing.T) {
		if err := web1.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(web1.Addr, "22"), 2*time.Second)
		if err != nil {
			t.Fatalf("dial stopped host: %v", err)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 4)
		if n, err := io.ReadFull(conn, buf); err == nil {
			t.Errorf("stopped host: got banner %q; want no answer", buf[:n])
		}
		if err := web1.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "SSH-" {
			t.Errorf("resumed host: got %q, %v; want an SSH banner", buf, err)
		}
	})

	t.Run("stop leaves nothing behind", func(t *testing.T) {
		stopped = true
		if err := l.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := l.Stop(); err != nil {
			t.Errorf("second Stop: got %v; want nil (idempotent)", err)
		}
		if _, err := os.Stat(l.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lab dir %s: got %v; want it removed", l.Dir, err)
		}
		if _, err := web1.Exec(t.Context(), "true"); !errors.Is(err, lab.ErrStopped) {
			t.Errorf("Exec after Stop: got %v; want ErrStopped", err)
		}
		if left := processesIn(t, pidNS); len(left) > 0 {
			t.Errorf("processes left in the hosts' pid namespaces: %v", left)
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if bytes.Contains(mi, []byte(l.Dir)) {
			t.Errorf("mount table still mentions %s:\n%s", l.Dir, mi)
		}
		for _, d := range takeSnapshot(t).diff(before) {
			t.Errorf("controller changed: %s", d)
		}
	})
}

// processesIn lists the processes (pid: comm) in any of the pid namespaces.
func processesIn(t *testing.T, nss []string) []string {
	t.Helper()
	want := map[string]bool{}
	for _, ns := range nss {
		want[ns] = true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		if err == nil && want[ns] {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			left = append(left, fmt.Sprintf("%d: %s", pid, bytes.TrimSpace(comm)))
		}
	}
	return left
}

// TestChain checks a two-hop chain: b1 (from the controller) -> b2 -> db,
// where b1 itself cannot reach db.
func TestChain(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: subnet, Hosts: []lab.HostSpec{
		{Name: "b1", Group: "bastions"}, {Name: "b2", Group: "bastions", Via: "b1"}, {Name: "db", Group: "dbservers", Via: "b2"},
	}})
	b1, b2, db := l.Host("b1"), l.Host("b2"), l.Host("db")
	out, err := runSSH(t, "-F", l.SSHConfig, "-o", "BatchMode=yes", "db", "hostname")
	if err != nil || out != "db" {
		t.Errorf("ssh db through b1 and b2: got %q, %v; want db", out, err)
	}
	probe := "bash -c " + shell.Quote("exec 3<>/dev/tcp/"+db.Addr+"/22 && head -c 4 <&3")
	if out, err := b1.Exec(t.Context(), probe); err == nil {
		t.Errorf("b1 -> db %s: got %q; want unreachable (db is behind b2)", db.Addr, out)
	}
	if out, err := b2.Exec(t.Context(), probe); err != nil || string(out) != "SSH-" {
		t.Errorf("b2 -> db %s: got %q, %v; want an SSH banner", db.Addr, out, err)
	}
	inv, err := os.ReadFile(l.Inventory)
	if err != nil || !bytes.Contains(inv, []byte(`"db" = "opsmop_host=`+db.Addr+` opsmop_port=22 opsmop_via=b2"`)) {
		t.Errorf("inventory: got %s, %v; want db via b2", inv, err)
	}
}

// TestStopDir tears a lab down as a fresh process would: from its
// directory only.
func TestStopDir(t *testing.T) {
	labtest.Require(t)
	dir := filepath.Join(lab.DefaultBase, "test-stopdir-"+strconv.Itoa(os.Getpid()))
	l, err := lab.Start(t.Context(), lab.Config{Dir: dir, Subnet: subnet, Hosts: []lab.HostSpec{{Name: "one"}, {Name: "two", Via: "one"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop() })
	if l.Dir != dir {
		t.Errorf("Dir: got %s; want %s", l.Dir, dir)
	}
	var nss []string
	for _, h := range l.Hosts {
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", h.PID))
		nss = append(nss, ns)
	}
	if err := lab.StopDir(dir); err != nil {
		t.Fatalf("StopDir: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: got %v; want removed", dir, err)
	}
	if left := processesIn(t, nss); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if err := lab.StopDir(dir); err != nil {
		t.Errorf("StopDir of a removed lab: got %v; want nil", err)
	}
	// A directory without a state file is never removed.
	other := t.TempDir()
	if err := lab.StopDir(other); err == nil || !strings.Contains(err.Error(), "not a lab directory") {
		t.Errorf("StopDir of a non-lab dir: got %v; want a refusal", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("non-lab dir: got %v; want it left alone", err)
	}
}

// TestStartFailureCleansUp takes a host's address first and checks that
// Start says which host failed and what to do, and leaves nothing.
func TestStartFailureCleansUp(t *testing.T) {
	labtest.Require(t)
	ln, err := net.Listen("tcp", "127.10.0.2:22")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(lab.DefaultBase, "test-fail-"+strconv.Itoa(os.Getpid()))
	l, err := lab.Start(t.Context(), lab.Config{Dir: dir, Subnet: subnet, Hosts: []lab.HostSpec{{Name: "ok"}, {Name: "taken"}}})
	if err == nil {
		l.Stop()
		t.Fatal("Start with a taken address: got no error; want one")
	}
	if !strings.Contains(err.Error(), "host taken") || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "Config.Port") {
		t.Errorf("got %v; want it to name host taken and the bind failure", err)
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("%s after failed Start: got %v; want removed", dir, serr)
	}
}

// BenchmarkStart50 measures Start and Stop of 50 hosts (45 public, a
// bastion and 4 private hosts behind it).
func BenchmarkStart50(b *testing.B) {
	labtest.Require(b)
	hosts := []lab.HostSpec{{Name: "bastion", Group: "bastions"}}
	for i := 1; i <= 45; i++ {
		hosts = append(hosts, lab.HostSpec{Name: fmt.Sprintf("web%d", i), Group: "webservers"})
	}
	for i := 1; i <= 4; i++ {
		hosts = append(hosts, lab.HostSpec{Name: fmt.Sprintf("db%d", i), Group: "dbservers", Via: "bastion"})
	}
	for b.Loop() {
		t0 := time.Now()
		l, err := lab.Start(b.Context(), lab.Config{Subnet: subnet, Hosts: hosts})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Since(t0)
		t1 := time.Now()
		if err := l.Stop(); err != nil {
			b.Fatal(err)
		}
		b.Logf("50 hosts: Start %v, Stop %v", start, time.Since(t1))
	}
}
