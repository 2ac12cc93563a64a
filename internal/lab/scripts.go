package lab

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/opsmop/opsmop/internal/shell"
)

// pathEnv is the PATH every lab script and Exec runs with.
const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// overlayOpts are added to every overlay mount so the layers stay plain
// directories whatever the kernel's defaults (an upper dir written with
// metacopy or index on could not serve as a lower layer of another mount).
const overlayOpts = "index=off,metacopy=off"

// overlayFstab returns fstab lines mounting, over every directory D in dirs,
// an overlay of the lowers (top first, each + D), then D itself, with
// upper+D and work+D. One `mount -a -T FILE` then does every mount in a
// single exec (Start costs mostly process start-ups).
func overlayFstab(b *strings.Builder, fsname string, dirs, lowers []string, upper, work string) {
	for _, d := range dirs {
		var lower []string
		for _, l := range lowers {
			lower = append(lower, filepath.Join(l, d))
		}
		lower = append(lower, d)
		fmt.Fprintf(b, "%s %s overlay lowerdir=%s,upperdir=%s,workdir=%s,%s 0 0\n",
			fsname, d, strings.Join(lower, ":"), filepath.Join(upper, d), filepath.Join(work, d), overlayOpts)
	}
}

// templateDirs are the directories useradd and chpasswd write to.
func templateDirs() []string { return []string{"/etc", "/home", "/var"} }

// templateFstab mounts the template layer's overlays (for building it).
func templateFstab(upper, work string) string {
	var b strings.Builder
	overlayFstab(&b, "opsmop-lab-template", templateDirs(), nil, upper, work)
	return b.String()
}

// templateScript creates the lab users inside the template overlays;
// chpasswd reads "deploy:PASSWORD" from stdin, so the password is never in
// an argv. Keys, shadow fields and sudoers are written by Go afterwards.
func templateScript(fstab string) string {
	return "set -eu\nmount -a -T " + shell.Quote(fstab) + `
for u in deploy ops app; do
  id -u "$u" >/dev/null 2>&1 || useradd -m -U -s /bin/bash "$u"
done
chpasswd
`
}

// hostFstab mounts a host's overlays (template layer between the machine
// and the host's upper dir), a fresh /proc for its pid namespace, and its
// own /run (a directory in the lab dir, so it is visible from outside).
func hostFstab(templateUpper, upper, work, run, name string) string {
	var b strings.Builder
	overlayFstab(&b, "opsmop-lab-"+name, overlaid(), []string{templateUpper}, upper, work)
	// Sources differ from the machine's ("proc") so mount -a never thinks
	// these are already mounted.
	b.WriteString("opsmop-lab-proc /proc proc nosuid,nodev,noexec 0 0\n")
	fmt.Fprintf(&b, "%s /run none bind 0 0\n", run)
	return b.String()
}

// hostScript is what a host's first process (pid 1 of its pid namespace)
// runs: mount everything in its fstab, set the hostname, bring its network
// up, then exec sshd (or, for a bastion reachable from the controller, the
// inetd-style acceptor).
func hostScript(p *planned, h *Host, fstab string, foreign []string) string {
	var b strings.Builder
	b.WriteString("set -eu\n")
	if len(foreign) > 0 {
		// Ours only: this mount namespace is private (Go's exec made it so).
		fmt.Fprintf(&b, "umount -l %s 2>/dev/null || true\n", shell.Join(foreign...))
	}
	b.WriteString("mount -a -T " + shell.Quote(fstab) + "\n")
	fmt.Fprintf(&b, "echo %s >/proc/sys/kernel/hostname\n", shell.Quote(h.Name))
	cfg := "/etc/ssh/opsmop-lab/sshd_config"
	listen := fmt.Sprintf("ListenAddress=%s:%d", h.Addr, h.Port)
	switch {
	case p.acceptor:
		// fd 3 is the listening socket the lab opened in the controller's
		// network namespace; every connection gets its own `sshd -i` here.
		// The lab brings lo and the links up from outside.
		fmt.Fprintf(&b, "sshd -t -f %s\n", cfg)
		fmt.Fprintf(&b, "exec perl -e %s -- /usr/sbin/sshd -i -e -f %s\n", shell.Quote(acceptorPerl), cfg)
	case p.netns:
		// Wait until the lab has created this host's eth0 (fd 3 carries
		// "go"), then address it and listen on it.
		b.WriteString("read -r go <&3 || true\nexec 3<&-\n")
		b.WriteString("[ \"$go\" = go ] || { echo 'opsmop-lab: network setup aborted' >&2; exit 1; }\n")
		fmt.Fprintf(&b, "ip -batch - <<'EOF'\nlink set lo up\naddr add %s/24 dev eth0\nlink set eth0 up\nEOF\n", h.Addr)
		fmt.Fprintf(&b, "exec /usr/sbin/sshd -D -e -f %s -o %s\n", cfg, shell.Quote(listen))
	default:
		fmt.Fprintf(&b, "exec /usr/sbin/sshd -D -e -f %s -o %s\n", cfg, shell.Quote(listen))
	}
	return b.String()
}

// acceptorReady is what the acceptor prints to its log once it accepts.
const acceptorReady = "opsmop-lab: acceptor ready"

// acceptorPerl accepts connections on fd 3 and runs its arguments (sshd -i)
// for each with the connection as stdin and stdout. As pid 1 of the host's
// pid namespace it ignores SIGCHLD so every exited process is reaped; the
// children get the default disposition back before exec.
const acceptorPerl = `
use strict;
$SIG{CHLD} = 'IGNORE';
open(my $l, '+<&=', 3) or die "opsmop-lab acceptor: fd 3: $!\n";
print STDERR "` + acceptorReady + `\n";
for (;;) {
  my $c;
  unless (accept($c, $l)) { select(undef, undef, undef, 0.01); next; }
  my $pid = fork();
  if (defined $pid && $pid == 0) {
    $SIG{CHLD} = 'DEFAULT';
    close($l);
    open(STDIN, '<&', $c) or exit 1;
    open(STDOUT, '>&', $c) or exit 1;
    close($c);
    exec { $ARGV[0] } @ARGV or exit 127;
  }
  close($c);
}
`
