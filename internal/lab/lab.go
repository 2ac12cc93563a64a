// Package lab runs throwaway OpenSSH hosts on this machine for tests,
// benchmarks and the demo. Every host is a real sshd in its own mount, UTS
// and pid namespaces, with overlays over /etc, /var, /srv, /home, /opt,
// /root, /tmp and /usr so its changes land in a per-host upper directory and
// never on the machine. Hosts reached through another host (HostSpec.Via)
// live in their own network namespaces, linked only to their parent, so the
// controller cannot reach them except through the parent's sshd. See
// docs/lab.md for the topology. Everything needs root. Tests start labs
// through internal/labtest, which holds everything that needs testing.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opsmop/opsmop/internal/secret"
)

// HostSpec describes one lab host.
type HostSpec struct {
	// Name is the inventory name and the hostname, e.g. "web1": lower-case
	// letters, digits and inner '-', at most 63 characters.
	Name string
	// Group is the inventory group, e.g. "webservers"; "" = "ungrouped".
	Group string
	// Via is "" for a host reachable from the controller, else the name of
	// the host it is reached through (which may itself have a Via).
	Via string
	// SSHDOptions are sshd_config lines for this host only, e.g.
	// "MaxSessions 1" or "Subsystem sftp /nonexistent": each replaces the
	// lab's line with the same keyword (for Subsystem, the same keyword
	// and name), or is added. One setting per entry; HostKey, PidFile,
	// ListenAddress, Port, Match and Include are the lab's.
	SSHDOptions []string
}

// Config describes a lab.
type Config struct {
	// Dir is the lab directory. It is created, must be missing or empty, and
	// must not be under /etc, /var, /srv, /home, /opt, /root, /tmp or /usr.
	// "" = a fresh directory under /run/opsmop-lab/.
	Dir string
	// Subnet is the second octet of the 127.S.0.0/16 block the public hosts
	// listen in (127.S.0.1, 127.S.0.2, ...) and of the 10.S.k.0/24 links of
	// private hosts. 1-255, required; parallel labs must use different ones.
	Subnet byte
	// Hosts are the hosts to start.
	Hosts []HostSpec
	// Port is the sshd port of every host; 0 = 22, or 2222 when the
	// machine's own sshd listens on 0.0.0.0:22 (which blocks port 22 on
	// every 127.x address).
	Port int
	// NoTmpfs keeps the lab directory on the disk it is on instead of
	// mounting a tmpfs there (the default; everything the hosts change then
	// lives in memory until Stop). Ignored on an overlayfs, which cannot
	// hold overlay upper dirs.
	NoTmpfs bool
}

// Lab is a running set of hosts. Its exported fields are set by Start and
// must not be changed.
type Lab struct {
	// Dir is the lab directory (see docs/lab.md for its layout).
	Dir string
	// Hosts are the running hosts, in Config.Hosts order.
	Hosts []*Host
	// ClientKey is the path of the ed25519 private key authorized for root,
	// deploy, ops and app on every host.
	ClientKey string
	// DeployPassword is deploy's login and sudo password (random per lab).
	DeployPassword secret.Secret
	// DeployPasswordFile is a 0600 file holding DeployPassword and a newline.
	DeployPasswordFile string
	// KnownHosts is a known_hosts file with every host's key: public hosts
	// under their 127.S.x.y address, private ones under their address as
	// seen from their Via parent ("[addr]:port" when Port is not 22).
	KnownHosts string
	// Inventory is an inventory.toml with every host (see docs/lab.md).
	Inventory string
	// SSHConfig is an ssh_config for the system ssh client: one Host entry
	// per lab host (ProxyJump for private ones), user root, ClientKey,
	// KnownHosts with strict checking. `ssh -F SSHConfig db1 hostname`.
	SSHConfig string
	// Subnet and Port are the Config values in effect.
	Subnet byte
	Port   int

	mu      sync.Mutex
	stopped bool
	procs   []*proc
	// sshdBase is the shared sshd_config (buildTemplate), which hosts
	// with SSHDOptions get a copy of with their lines.
	sshdBase string
}

// Host is one running lab host.
type Host struct {
	// Name, Group and Via are from the HostSpec (Group "" becomes
	// "ungrouped").
	Name, Group, Via string
	// Addr is the address to dial: from the controller for a public host,
	// from its Via parent for a private one.
	Addr string
	// Port is the sshd port.
	Port int
	// PID is the host's first process as seen from the controller: pid 1 of
	// its pid namespace, which is sshd -D (or, for a bastion reachable from
	// the controller, the acceptor that starts `sshd -i` per connection).
	// Killing it kills every process of the host.
	PID int
	// Upper is the overlay upper root: Upper+"/etc/..." holds this host's
	// changes to /etc, and so on for every overlaid directory.
	Upper string
	// Log is the file sshd logs to (LogLevel VERBOSE): "Accepted publickey
	// for ...", "Connection from ..." lines.
	Log string
	// HostKey is the host's public key in authorized_keys format.
	HostKey string

	lab *Lab
}

// proc is a started host process.
type proc struct {
	host *Host
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	log  *os.File
	sync io.WriteCloser // private hosts: the "go" pipe
}

// ErrStopped is returned by Host methods once the lab is stopped.
var ErrStopped = errors.New("lab is stopped")

// startTimeout bounds how long Start waits for all hosts to accept SSH
// when ctx has no earlier deadline.
const startTimeout = 90 * time.Second

// Start builds the lab described by cfg and returns once every host's sshd
// is listening (bounded by ctx and 90 s). On error everything already set up
// is torn down. The caller must call Stop (or StopDir / `opsmop-lab down`).
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	ps, err := plan(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = defaultPort()
	}
	for _, tool := range []string{"sshd", "sudo", "nsenter", "mount", "ip", "useradd", "chpasswd"} {
		if _, err := toolPath(tool); err != nil {
			return nil, fmt.Errorf("lab: %w: install openssh-server, sudo, util-linux, iproute2 and passwd (make deps)", err)
		}
	}
	for _, p := range ps {
		if p.acceptor {
			if _, err := toolPath("perl"); err != nil {
				return nil, fmt.Errorf("lab: host %s has hosts behind it and needs perl (perl-base) for its acceptor: %w", p.spec.Name, err)
			}
			break
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root (namespaces, mounts, sshd)")
	}
	dir, removeParent, err := makeDir(cfg.Dir, cfg.Subnet)
	if err != nil {
		return nil, err
	}
	l := &Lab{
		Dir:                dir,
		ClientKey:          filepath.Join(dir, "id_ed25519"),
		DeployPasswordFile: filepath.Join(dir, "deploy_password"),
		KnownHosts:         filepath.Join(dir, "known_hosts"),
		Inventory:          filepath.Join(dir, "inventory.toml"),
		SSHConfig:          filepath.Join(dir, "ssh_config"),
		Subnet:             cfg.Subnet,
		Port:               cfg.Port,
	}
	st := &state{Version: stateVersion, Dir: dir, RemoveParent: removeParent}
	// The state file exists from the start, so StopDir can always clean up.
	if err := writeState(dir, st); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := l.start(ctx, ps, st, cfg.NoTmpfs); err != nil {
		if serr := l.Stop(); serr != nil {
			return nil, fmt.Errorf("%w (and cleaning up: %v)", err, serr)
		}
		return nil, err
	}
	return l, nil
}

// makeDir creates the lab directory: cfg.Dir after validation, or a fresh
// one under DefaultBase. removeParent is DefaultBase when Stop should try to
// remove it (if empty) too.
func makeDir(dir string, subnet byte) (string, string, error) {
	if dir != "" {
		if err := checkDir(dir); err != nil {
			return "", "", err
		}
		dir = filepath.Clean(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", fmt.Errorf("lab: create %s: %w", dir, err)
		}
		if filepath.Dir(dir) == DefaultBase {
			return dir, DefaultBase, nil
		}
		return dir, "", nil
	}
	var err error
	for range 3 { // another lab's Stop may remove an empty DefaultBase in between
		if err = os.MkdirAll(DefaultBase, 0o755); err != nil {
			continue
		}
		var d string
		if d, err = os.MkdirTemp(DefaultBase, "s"+strconv.Itoa(int(subnet))+"-"); err == nil {
			if err = os.Chmod(d, 0o755); err != nil {
				return "", "", err
			}
			return d, DefaultBase, nil
		}
	}
	return "", "", fmt.Errorf("lab: create a directory under %s: %w", DefaultBase, err)
}

func (l *Lab) start(ctx context.Context, ps []*planned, st *state, noTmpfs bool) error {
	deadline := time.Now().Add(startTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	// The lab directory gets its own tmpfs: the upper dirs then cost no
	// fsync (useradd, dpkg and sshd sync a lot, which on a busy disk takes
	// seconds), and a lab directory on an overlayfs (a container's root)
	// could not hold upper dirs at all.
	var sfs unix.Statfs_t
	onOverlay := unix.Statfs(l.Dir, &sfs) == nil && sfs.Type == unix.OVERLAYFS_SUPER_MAGIC
	if !noTmpfs || onOverlay {
		st.Tmpfs = true // recorded first: a crash right after the mount still gets it undone
		if err := writeState(l.Dir, st); err != nil {
			return err
		}
		if err := unix.Mount(tmpfsSource, l.Dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("lab: mount a tmpfs on %s: %w", l.Dir, err)
		}
		if err := writeState(l.Dir, st); err != nil {
			return err
		}
	}

	client, err := newKeyPair("opsmop-lab-client")
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.ClientKey, client.private, 0o600); err != nil {
		return fmt.Errorf("lab: write client key: %w", err)
	}
	if err := os.WriteFile(l.ClientKey+".pub", client.public, 0o644); err != nil {
		return fmt.Errorf("lab: write client key: %w", err)
	}
	pw, err := randomPassword(24)
	if err != nil {
		return err
	}
	l.DeployPassword = secret.New(pw)
	if err := os.WriteFile(l.DeployPasswordFile, []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab: write deploy password file: %w", err)
	}
	if err := l.buildTemplate(ctx, client.public); err != nil {
		return err
	}

	// Per-host files: upper dirs mirrored from the machine, host key,
	// hostname, hosts.
	etcHosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return fmt.Errorf("lab: read /etc/hosts: %w", err)
	}
	var known strings.Builder
	l.Hosts = make([]*Host, len(ps))
	for i, p := range ps {
		h := &Host{Name: p.spec.Name, Group: p.spec.Group, Via: p.spec.Via, Addr: p.addr, Port: l.Port, lab: l}
		if h.Group == "" {
			h.Group = "ungrouped"
		}
		hd := filepath.Join(l.Dir, "hosts", h.Name)
		h.Upper = filepath.Join(hd, "upper")
		h.Log = filepath.Join(hd, "sshd.log")
		kp, err := newKeyPair("root@" + h.Name)
		if err != nil {
			return err
		}
		h.HostKey = strings.TrimSpace(string(kp.public))
		if err := prepareHostDir(hd, h, kp, etcHosts); err != nil {
			return fmt.Errorf("lab: host %s: %w", h.Name, err)
		}
		if len(p.spec.SSHDOptions) > 0 {
			// The host's own sshd_config, in its upper dir over the
			// template's.
			cfg := sshdConfigWith(l.sshdBase, p.spec.SSHDOptions)
			if err := writeFileIn(h.Upper, "etc/ssh/opsmop-lab/sshd_config", []byte(cfg), 0o644); err != nil {
				return fmt.Errorf("lab: host %s: %w", h.Name, err)
			}
		}
		known.WriteString(knownHostsLine(h.Addr, h.Port, kp.public))
		l.Hosts[i] = h
	}
	if err := os.WriteFile(l.KnownHosts, []byte(known.String()), 0o644); err != nil {
		return fmt.Errorf("lab: write known_hosts: %w", err)
	}
	if err := os.WriteFile(l.Inventory, inventoryTOML(l.Hosts, l.ClientKey), 0o644); err != nil {
		return fmt.Errorf("lab: write inventory: %w", err)
	}
	if err := os.WriteFile(l.SSHConfig, sshClientConfig(l.Hosts, l.ClientKey, l.KnownHosts), 0o644); err != nil {
		return fmt.Errorf("lab: write ssh_config: %w", err)
	}

	// Fail early, and clearly, when an address is taken (sshd would only
	// log it).
	for i, p := range ps {
		if p.parent >= 0 || p.acceptor {
			continue
		}
		if err := checkFree(l.Hosts[i]); err != nil {
			return err
		}
	}

	// Start every host; record each in the state file as soon as it runs.
	foreign := foreignMounts(l.Dir)
	for i, p := range ps {
		pr, err := l.spawn(p, l.Hosts[i], foreign)
		if err != nil {
			return err
		}
		st.Hosts = append(st.Hosts, stateHostOf(pr))
		if err := writeState(l.Dir, st); err != nil {
			return err
		}
	}
	if err := l.wireNetwork(ctx, ps); err != nil {
		return err
	}
	return l.waitReady(ctx, ps)
}

// toolPath finds a program in the directories of pathEnv (the caller's
// PATH may lack the sbin directories).
func toolPath(name string) (string, error) {
	for _, d := range filepath.SplitList(strings.TrimPrefix(pathEnv, "PATH=")) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s", name, strings.TrimPrefix(pathEnv, "PATH="))
}

// checkFree reports whether h's address and port can be listened on.
func checkFree(h *Host) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))
	if err != nil {
		return addrInUse(h, err)
	}
	return ln.Close()
}

func addrInUse(h *Host, err error) error {
	return fmt.Errorf("lab: host %s: cannot listen on %s port %d: %w (another lab with Subnet %d, or a machine sshd listening on 0.0.0.0:%d, which blocks that port on every 127.x address: set Config.Port, e.g. 2222, or use another Subnet)",
		h.Name, h.Addr, h.Port, err, h.lab.Subnet, h.Port)
}

// prepareHostDir creates the host's upper and work dirs and puts its host
// key, /etc/hostname and /etc/hosts into the upper dir.
func prepareHostDir(hd string, h *Host, kp keyPair, etcHosts []byte) error {
	for _, d := range overlaid() {
		if err := mirrorDirs(h.Upper, d); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(hd, "work", d), 0o700); err != nil {
			return err
		}
	}
	// The host's /run: a directory here, bind-mounted inside.
	if err := os.MkdirAll(filepath.Join(hd, "run", "sshd"), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(hd, "run", "lock"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(hd, "run", "lock"), 0o777|os.ModeSticky); err != nil {
		return err
	}
	if err := writeFileIn(h.Upper, "etc/ssh/opsmop-lab/ssh_host_ed25519_key", kp.private, 0o600); err != nil {
		return err
	}
	if err := writeFileIn(h.Upper, "etc/ssh/opsmop-lab/ssh_host_ed25519_key.pub", kp.public, 0o644); err != nil {
		return err
	}
	if err := writeFileIn(h.Upper, "etc/hostname", []byte(h.Name+"\n"), 0o644); err != nil {
		return err
	}
	hosts := strings.TrimRight(string(etcHosts), "\n") + "\n# opsmop-lab\n" + h.Addr + "\t" + h.Name + "\n"
	return writeFileIn(h.Upper, "etc/hosts", []byte(hosts), 0o644)
}

// buildTemplate creates the shared layer every host has between the
// machine's directories and its own upper dir: the lab users (created by
// useradd and chpasswd inside the template overlays), their
// authorized_keys, the sudoers file and the sshd configuration.
func (l *Lab) buildTemplate(ctx context.Context, pubKey []byte) error {
	upper := filepath.Join(l.Dir, "template", "upper")
	work := filepath.Join(l.Dir, "template", "work")
	for _, d := range overlaid() {
		if err := mirrorDirs(upper, d); err != nil {
			return fmt.Errorf("lab: template: %w", err)
		}
	}
	for _, d := range templateDirs() {
		if err := os.MkdirAll(filepath.Join(work, d), 0o700); err != nil {
			return fmt.Errorf("lab: template: %w", err)
		}
	}
	sftp := "/usr/lib/openssh/sftp-server"
	for _, c := range []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server"} {
		if _, err := os.Stat(c); err == nil {
			sftp = c
			break
		}
	}
	penalties, err := sshdHasPenalties(ctx)
	if err != nil {
		return err
	}
	l.sshdBase = sshdConfig(sftp, penalties)
	if err := writeFileIn(upper, "etc/ssh/opsmop-lab/sshd_config", []byte(l.sshdBase), 0o644); err != nil {
		return fmt.Errorf("lab: template: %w", err)
	}
	if err := writeFileIn(upper, "etc/sudoers.d/opsmop-lab", []byte(sudoersLab), 0o440); err != nil {
		return fmt.Errorf("lab: template: %w", err)
	}
	fstab := filepath.Join(l.Dir, "template", "fstab")
	if err := os.WriteFile(fstab, []byte(templateFstab(upper, work)), 0o644); err != nil {
		return fmt.Errorf("lab: template: %w", err)
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", templateScript(fstab), "opsmop-lab-template")
	cmd.Env = []string{pathEnv, "LC_ALL=C"}
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader("deploy:" + l.DeployPassword.Reveal() + "\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab: creating the lab users in %s failed: %w\n%s", upper, err, out)
	}
	if err := freshRoot(upper); err != nil {
		return fmt.Errorf("lab: template: root's home: %w", err)
	}
	if err := lockNothing(upper, "root", "ops", "app"); err != nil {
		return fmt.Errorf("lab: template: %w", err)
	}
	for _, u := range []string{"root", "deploy", "ops", "app"} {
		if err := authorize(upper, u, pubKey); err != nil {
			return fmt.Errorf("lab: template: user %s: %w", u, err)
		}
	}
	return nil
}

// sshdHasPenalties reports whether sshd is OpenSSH 9.8 or later, which
// knows (and by default enables) PerSourcePenalties.
func sshdHasPenalties(ctx context.Context) (bool, error) {
	sshd, err := toolPath("sshd")
	if err != nil {
		return false, err
	}
	out, _ := exec.CommandContext(ctx, sshd, "-V").CombinedOutput()
	m := regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		return false, fmt.Errorf("lab: cannot tell the OpenSSH version from `sshd -V`: %q", out)
	}
	maj, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return maj > 9 || maj == 9 && minor >= 8, nil
}

// spawn starts the host's first process in new pid, mount and UTS (and, for
// netns hosts, network) namespaces, detached (own session, no terminal, no
// stdio from us) so it outlives the starting process.
func (l *Lab) spawn(p *planned, h *Host, foreign []string) (*proc, error) {
	logf, err := os.OpenFile(h.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: host %s: %w", h.Name, err)
	}
	hd := filepath.Join(l.Dir, "hosts", h.Name)
	fstab := filepath.Join(hd, "fstab")
	err = os.WriteFile(fstab, []byte(hostFstab(filepath.Join(l.Dir, "template", "upper"), h.Upper, filepath.Join(hd, "work"), filepath.Join(hd, "run"), h.Name)), 0o644)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("lab: host %s: %w", h.Name, err)
	}
	cmd := exec.Command("/bin/sh", "-c", hostScript(p, h, fstab, foreign), "opsmop-lab-"+h.Name)
	cmd.Env = []string{pathEnv, "LC_ALL=C", "HOME=/root"}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	unshare := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS)
	if p.netns {
		unshare |= syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:       true,
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: unshare,
	}
	pr := &proc{host: h, cmd: cmd, done: make(chan struct{}), log: logf}
	var closeAfter []io.Closer
	switch {
	case p.acceptor:
		ln, err := net.Listen("tcp", net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))
		if err != nil {
			logf.Close()
			return nil, addrInUse(h, err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("lab: host %s: %w", h.Name, err)
		}
		cmd.ExtraFiles = []*os.File{f}
		closeAfter = append(closeAfter, f)
	case p.netns:
		r, w, err := os.Pipe()
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("lab: host %s: %w", h.Name, err)
		}
		cmd.ExtraFiles = []*os.File{r}
		closeAfter = append(closeAfter, r)
		pr.sync = w
	}
	err = cmd.Start()
	for _, c := range closeAfter {
		c.Close()
	}
	if err != nil {
		logf.Close()
		if pr.sync != nil {
			pr.sync.Close()
		}
		return nil, fmt.Errorf("lab: host %s: start: %w", h.Name, err)
	}
	h.PID = cmd.Process.Pid
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(pr.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, pr)
	l.mu.Unlock()
	return pr, nil
}

// wireNetwork creates a veth pair for every private host (cK in the
// parent's namespace, eth0 in the host's), addresses the parent ends, and
// lets the private hosts' scripts continue.
func (l *Lab) wireNetwork(ctx context.Context, ps []*planned) error {
	var create strings.Builder
	for _, p := range ps {
		if p.parent < 0 {
			continue
		}
		fmt.Fprintf(&create, "link add c%d netns %d type veth peer name eth0 netns %d\n", p.link, l.Hosts[p.parent].PID, l.Hosts[p.index].PID)
	}
	if create.Len() == 0 {
		return nil
	}
	if err := runIP(ctx, nil, create.String()); err != nil {
		return fmt.Errorf("lab: create links: %w", err)
	}
	for _, p := range ps {
		if len(p.children) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString("link set lo up\n")
		for _, c := range p.children {
			k := ps[c].link
			fmt.Fprintf(&b, "addr add %s/24 dev c%d\nlink set c%d up\n", parentAddr(l.Subnet, k), k, k)
		}
		if err := runIP(ctx, l.Hosts[p.index], b.String()); err != nil {
			return fmt.Errorf("lab: host %s: address its links: %w", p.spec.Name, err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, pr := range l.procs {
		if pr.sync == nil {
			continue
		}
		_, err := io.WriteString(pr.sync, "go\n")
		pr.sync.Close()
		pr.sync = nil
		if err != nil {
			return fmt.Errorf("lab: host %s: release network wait: %w", pr.host.Name, err)
		}
	}
	return nil
}

// runIP feeds batch to `ip -batch -`, in the network namespace of h (nil =
// the controller's).
func runIP(ctx context.Context, h *Host, batch string) error {
	ip, err := toolPath("ip")
	if err != nil {
		return err
	}
	args := []string{ip, "-batch", "-"}
	if h != nil {
		nsenter, err := toolPath("nsenter")
		if err != nil {
			return err
		}
		args = append([]string{nsenter, "-t", strconv.Itoa(h.PID), "-n", "--"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = []string{pathEnv, "LC_ALL=C"}
	cmd.Stdin = strings.NewReader(batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// waitReady polls the hosts' logs until each sshd has logged that it
// listens (or the acceptor that it accepts); a host whose process exits
// first fails Start with the end of its log.
func (l *Lab) waitReady(ctx context.Context, ps []*planned) error {
	l.mu.Lock()
	procs := append([]*proc(nil), l.procs...)
	l.mu.Unlock()
	pending := map[*proc]string{}
	for i, pr := range procs {
		marker := fmt.Sprintf("Server listening on %s port %d.", pr.host.Addr, pr.host.Port)
		if ps[i].acceptor {
			marker = acceptorReady
		}
		pending[pr] = marker
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		for pr, marker := range pending {
			b, _ := os.ReadFile(pr.host.Log)
			if bytes.Contains(b, []byte(marker)) {
				delete(pending, pr)
				continue
			}
			select {
			case <-pr.done:
				return fmt.Errorf("lab: host %s exited during start-up (%s); its sshd log ended:\n%s", pr.host.Name, pr.cmd.ProcessState, tail(b, 2000))
			default:
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			var names []string
			for pr := range pending {
				names = append(names, pr.host.Name)
			}
			return fmt.Errorf("lab: hosts %s not listening after start-up wait: %w", strings.Join(names, ", "), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Stop kills every host (by recorded PID; each host's pid namespace dies
// with it, taking its mounts and network namespace along), then removes the
// lab directory. Idempotent; safe to call after a failed Start.
func (l *Lab) Stop() error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	procs := l.procs
	for _, pr := range procs {
		if pr.sync != nil {
			pr.sync.Close()
			pr.sync = nil
		}
	}
	l.mu.Unlock()
	for _, pr := range procs {
		_ = pr.cmd.Process.Signal(syscall.SIGKILL)
	}
	timeout := time.After(10 * time.Second)
	var errs []error
	for _, pr := range procs {
		select {
		case <-pr.done:
		case <-timeout:
			errs = append(errs, fmt.Errorf("lab: host %s (pid %d) did not exit after SIGKILL", pr.host.Name, pr.host.PID))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return StopDir(l.Dir)
}

// Exec runs `sh -c script` as root inside the host (its mount, UTS, pid and
// network namespaces) and returns its combined output. A non-zero exit is
// an error (*exec.ExitError wrapped). For test assertions and fault
// injection; the script is visible in the controller's process table, so
// pass secrets with ExecInput.
func (h *Host) Exec(ctx context.Context, script string) ([]byte, error) {
	return h.ExecInput(ctx, script, nil)
}

// ExecInput is Exec with stdin (nil = empty).
func (h *Host) ExecInput(ctx context.Context, script string, stdin io.Reader) ([]byte, error) {
	if err := h.live(); err != nil {
		return nil, err
	}
	nsenter, err := toolPath("nsenter")
	if err != nil {
		return nil, fmt.Errorf("host %s: exec: %w", h.Name, err)
	}
	cmd := exec.CommandContext(ctx, nsenter, "-t", strconv.Itoa(h.PID), "-m", "-u", "-p", "-n", "--", "/bin/sh", "-c", script)
	cmd.Env = []string{pathEnv, "LC_ALL=C", "HOME=/root", "USER=root", "LOGNAME=root"}
	cmd.Dir = "/"
	cmd.Stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("host %s: exec: %w", h.Name, err)
	}
	return out, nil
}

// Signal sends sig to the host's first process (see PID): SIGSTOP freezes
// the host's sshd so new connections hang, SIGCONT resumes it. Sessions
// already running are separate processes and keep going.
func (h *Host) Signal(sig syscall.Signal) error {
	if err := h.live(); err != nil {
		return err
	}
	if err := syscall.Kill(h.PID, sig); err != nil {
		return fmt.Errorf("host %s: signal %v to pid %d: %w", h.Name, sig, h.PID, err)
	}
	return nil
}

func (h *Host) live() error {
	if h.lab == nil {
		return fmt.Errorf("host %s: %w", h.Name, ErrStopped)
	}
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	if h.lab.stopped || h.PID == 0 {
		return fmt.Errorf("host %s: %w", h.Name, ErrStopped)
	}
	return nil
}

// defaultPort is 22 unless a wildcard listener (typically the machine's
// own sshd on 0.0.0.0:22 or [::]:22) holds port 22, in which case it is
// 2222. It reads /proc/net/tcp{,6} rather than trying to bind, since
// other labs' 127.x:22 listeners would make a wildcard bind fail too.
func defaultPort() int {
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			// fields[1] is local_address as hex ADDR:PORT, fields[3] the state (0A = LISTEN).
			if len(fields) < 4 || fields[3] != "0A" {
				continue
			}
			addr, port, ok := strings.Cut(fields[1], ":")
			if ok && port == "0016" && strings.Trim(addr, "0") == "" {
				return 2222
			}
		}
	}
	return 22
}
