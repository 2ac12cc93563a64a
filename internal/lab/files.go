package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// keyPair is an ed25519 key in OpenSSH private-key format plus its
// authorized_keys line.
type keyPair struct {
	private []byte // PEM "OPENSSH PRIVATE KEY"
	public  []byte // "ssh-ed25519 AAAA... comment\n"
}

func newKeyPair(comment string) (keyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return keyPair{}, fmt.Errorf("encode private key: %w", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return keyPair{}, fmt.Errorf("encode public key: %w", err)
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(sp)), "\n") + " " + comment + "\n"
	return keyPair{private: pem.EncodeToMemory(blk), public: []byte(line)}, nil
}

// randomPassword returns n characters from [A-Za-z0-9].
func randomPassword(n int) (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("random password: %w", err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b), nil
}

// knownHostsLine is the known_hosts entry for a host key served at
// addr:port ("[addr]:port" form when port is not 22).
func knownHostsLine(addr string, port int, pub []byte) string {
	f := strings.Fields(string(pub))
	host := addr
	if port != 22 {
		host = "[" + addr + "]:" + strconv.Itoa(port)
	}
	return host + " " + f[0] + " " + f[1] + "\n"
}

// inventoryTOML renders the lab's inventory: one [groups.G.hosts] table per
// group (in order of first appearance), then [groups.all.vars]. Names,
// groups, addresses and the key path are validated to need no escaping.
func inventoryTOML(hosts []*Host, keyPath string) []byte {
	var order []string
	byGroup := map[string][]*Host{}
	for _, h := range hosts {
		if _, ok := byGroup[h.Group]; !ok {
			order = append(order, h.Group)
		}
		byGroup[h.Group] = append(byGroup[h.Group], h)
	}
	var b strings.Builder
	b.WriteString("# Written by opsmop-lab; the lab's hosts. Private hosts are reached via opsmop_via.\n")
	for _, g := range order {
		fmt.Fprintf(&b, "[groups.%s.hosts]\n", g)
		for _, h := range byGroup[g] {
			v := fmt.Sprintf("opsmop_host=%s opsmop_port=%d", h.Addr, h.Port)
			if h.Via != "" {
				v += " opsmop_via=" + h.Via
			}
			fmt.Fprintf(&b, "%q = %q\n", h.Name, v)
		}
		b.WriteString("\n")
	}
	b.WriteString("[groups.all.vars]\n")
	b.WriteString("opsmop_ssh_username = \"root\"\n")
	fmt.Fprintf(&b, "opsmop_ssh_private_key = %q\n", keyPath)
	return []byte(b.String())
}

// sshClientConfig renders an ssh_config with one Host entry per lab host.
func sshClientConfig(hosts []*Host, keyPath, knownHosts string) []byte {
	var b strings.Builder
	b.WriteString("# Written by opsmop-lab: ssh -F THIS-FILE HOSTNAME\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "Host %s\n  HostName %s\n  Port %d\n", h.Name, h.Addr, h.Port)
		if h.Via != "" {
			fmt.Fprintf(&b, "  ProxyJump %s\n", h.Via)
		}
	}
	fmt.Fprintf(&b, "Host *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  GlobalKnownHostsFile /dev/null\n", keyPath, knownHosts)
	return []byte(b.String())
}

// sshdConfig is the configuration every lab sshd runs with; ListenAddress
// is given per host on the command line.
func sshdConfig(sftpServer string, penalties bool) string {
	var b strings.Builder
	b.WriteString(`# opsmop-lab sshd configuration (shared by every lab host)
HostKey /etc/ssh/opsmop-lab/ssh_host_ed25519_key
PidFile /run/sshd.pid
LogLevel VERBOSE
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitEmptyPasswords no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes no
MaxStartups 400
LoginGraceTime 60
AllowTcpForwarding yes
AllowAgentForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
AcceptEnv LANG LC_*
`)
	if penalties {
		b.WriteString("PerSourcePenalties no\n")
	}
	fmt.Fprintf(&b, "Subsystem sftp %s\n", sftpServer)
	return b.String()
}

// sshdConfigWith returns base with opts (HostSpec.SSHDOptions, validated
// by plan): a line of base with the key of an option (sshdKey) is
// dropped, and the options are appended in order.
func sshdConfigWith(base string, opts []string) string {
	drop := map[string]bool{}
	for _, o := range opts {
		drop[sshdKey(o)] = true
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(base, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && drop[sshdKey(t)] {
			continue
		}
		b.WriteString(line)
	}
	b.WriteString("# this host's own (HostSpec.SSHDOptions)\n")
	for _, o := range opts {
		b.WriteString(strings.TrimSpace(o) + "\n")
	}
	return b.String()
}

// sshdKey is what makes two sshd_config lines the same setting: the
// keyword, lower-cased, and for Subsystem the subsystem's name too.
func sshdKey(line string) string {
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })
	if len(f) == 0 {
		return ""
	}
	k := strings.ToLower(f[0])
	if k == "subsystem" && len(f) > 1 {
		k += " " + f[1]
	}
	return k
}

// sudoersLab is the lab's /etc/sudoers.d file.
const sudoersLab = `# opsmop-lab: deploy needs its password, ops does not, app has no sudo.
Defaults lecture=never
deploy ALL=(ALL:ALL) ALL
ops ALL=(ALL) NOPASSWD: ALL
`

// mirrorDirs creates root/rel and every directory between, each with the
// mode and owner of the same path on the machine (or 0755 root when the
// machine has no such directory). An overlay shows a directory that exists
// in its upper layer with the upper layer's mode and owner, so the upper
// copies must match the machine's.
func mirrorDirs(root, rel string) error {
	rel = strings.Trim(filepath.Clean("/"+rel), "/")
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return err
	}
	cur, sys := root, "/"
	if err := mirrorOne(cur, sys); err != nil {
		return err
	}
	if rel == "" {
		return nil
	}
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		sys = filepath.Join(sys, part)
		if err := mirrorOne(cur, sys); err != nil {
			return err
		}
	}
	return nil
}

func mirrorOne(dst, src string) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	mode, uid, gid := os.FileMode(0o755), 0, 0
	if fi, err := os.Stat(src); err == nil && fi.IsDir() {
		mode = fi.Mode() & (os.ModePerm | os.ModeSticky | os.ModeSetgid | os.ModeSetuid)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	if err := os.Chown(dst, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// writeFileIn writes data to root/rel with mode perm, creating parent
// directories mirrored from the machine.
func writeFileIn(root, rel string, data []byte, perm os.FileMode) error {
	if err := mirrorDirs(root, filepath.Dir(rel)); err != nil {
		return err
	}
	p := filepath.Join(root, rel)
	if err := os.WriteFile(p, data, perm); err != nil {
		return err
	}
	return os.Chmod(p, perm)
}

// passwdEntry is a user's line in an /etc/passwd.
type passwdEntry struct {
	uid, gid int
	home     string
}

func lookupPasswd(etc, user string) (passwdEntry, error) {
	b, err := os.ReadFile(filepath.Join(etc, "passwd"))
	if err != nil {
		return passwdEntry{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || f[0] != user {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || !filepath.IsAbs(f[5]) {
			return passwdEntry{}, fmt.Errorf("%s/passwd: bad entry for %s", etc, user)
		}
		return passwdEntry{uid: uid, gid: gid, home: filepath.Clean(f[5])}, nil
	}
	return passwdEntry{}, fmt.Errorf("%s/passwd: no user %s", etc, user)
}

// lockNothing sets the password field of users in upper's /etc/shadow to
// "*": no password login, but not "locked" ("!"), which sshd without PAM
// would take as a reason to refuse key logins too.
func lockNothing(upper string, users ...string) error {
	p := filepath.Join(upper, "etc", "shadow")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		f := strings.Split(line, ":")
		if len(f) < 2 {
			continue
		}
		for _, u := range users {
			if f[0] == u {
				f[1] = "*"
				lines[i] = strings.Join(f, ":")
			}
		}
	}
	return os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0)
}

// authorize writes pub as user's ~/.ssh/authorized_keys in upper (0700
// .ssh, 0600 file, owned by the user).
func authorize(upper, user string, pub []byte) error {
	pw, err := lookupPasswd(filepath.Join(upper, "etc"), user)
	if err != nil {
		return err
	}
	if err := mirrorDirs(upper, pw.home); err != nil {
		return err
	}
	dir := filepath.Join(upper, pw.home, ".ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chown(dir, pw.uid, pw.gid); err != nil {
		return err
	}
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, pub, 0o600); err != nil {
		return err
	}
	return os.Chown(ak, pw.uid, pw.gid)
}

// freshRoot makes root's home in the template layer look like a fresh
// server's: the machine's /root entries are hidden by whiteouts, .bashrc
// and .profile come from /etc/skel (a controller's .bashrc can be slow:
// Debian's bash reads it for every command run over SSH), and .ssh is an
// opaque directory (authorize fills it).
func freshRoot(upper string) error {
	home := filepath.Join(upper, "root")
	ents, err := os.ReadDir("/root")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	provided := map[string]bool{".bashrc": true, ".profile": true, ".ssh": true}
	for _, e := range ents {
		if provided[e.Name()] {
			continue
		}
		// An overlay whiteout is a character device numbered 0:0 (its
		// permission bits are 0).
		if err := unix.Mknod(filepath.Join(home, e.Name()), unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("whiteout /root/%s: %w", e.Name(), err)
		}
	}
	for _, f := range []string{".bashrc", ".profile"} {
		b, err := os.ReadFile(filepath.Join("/etc/skel", f))
		if err != nil {
			b = nil // no skeleton: an empty file still hides the machine's
		}
		if err := os.WriteFile(filepath.Join(home, f), b, 0o644); err != nil {
			return err
		}
	}
	ssh := filepath.Join(home, ".ssh")
	if err := os.Mkdir(ssh, 0o700); err != nil {
		return err
	}
	if err := unix.Setxattr(ssh, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("mark %s opaque: %w", ssh, err)
	}
	return nil
}
