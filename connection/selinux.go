package connection

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// SELinux in the write path: every writer (Upload over SFTP or the
// shell, Local, and the providers that rename their own temp files)
// renames a temp file over its destination. On a host where SELinux is
// on (selinuxenabled exits 0) the temp file first gets the old file's
// context (chcon --reference), so a replaced file keeps its context; a
// new file gets the policy default (restorecon after the rename), as
// Ansible's copy does. Where chcon or restorecon is missing or fails on
// such a host the write fails with a message saying so, never silently.
//
// Whether SELinux is on is learned once per persistent shell, at its
// start (shell_init.sh sets __opsmop_se to 1 or 0 with builtins, running
// selinuxenabled only where it exists), so a host without SELinux pays
// no process per file. A script without that variable (an exec channel
// per command, Local) learns it itself, once per script.

// selinuxDetect is the sh code that sets __opsmop_se (1: SELinux on, 0:
// off) unless it is already set: command -v is a builtin, so a host
// without selinuxenabled starts no process.
const selinuxDetect = `[ -n "${__opsmop_se-}" ] || { __opsmop_se=0; if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled >/dev/null 2>&1; then __opsmop_se=1; fi; }`

// SELinuxRename is the sh code that renames the temp file tmp over dst
// (both shell words: paths quoted with shell.Quote, or "$var"
// expansions), keeping dst's SELinux context on a host where SELinux is
// on: the temp file gets the old file's context before the rename
// (chcon --reference); a new file gets the policy default after it
// (restorecon). Without SELinux it is a plain `mv -f`, no process more.
// Its status is non-zero when anything fails, with a message on stderr
// that says what and what to do; callers append `|| exit N`. It sets the
// variables __opsmop_se and __opsmop_sn.
func SELinuxRename(tmp, dst string) string {
	return "{ " + selinuxDetect + "; __opsmop_sn=; " +
		`if [ "$__opsmop_se" = 1 ]; then if [ -e ` + dst + ` ]; then chcon --reference=` + dst + ` -- ` + tmp +
		` || { echo "SELinux is on but chcon could not give the new file the context of "` + dst + `" (install coreutils' chcon, or check the context): the file is unchanged" >&2; false; }; else __opsmop_sn=1; fi; fi && ` +
		"mv -f -- " + tmp + " " + dst + ` && ` +
		`if [ -n "$__opsmop_sn" ]; then restorecon -- ` + dst +
		` || { echo "SELinux is on but restorecon could not give the new file "` + dst + `" its policy default context: the file is in place with the context it was created with; install policycoreutils and run restorecon on it" >&2; false; }; fi; }`
}

// Values of sftpSlot.selinux.
const (
	selinuxUnknown = iota // no upload has renamed through the shell yet
	selinuxOff
	selinuxOn
)

// selinuxState parses the "se=0|1" line a shell rename prints.
func selinuxState(stdout []byte) int32 {
	for _, l := range strings.Split(string(stdout), "\n") {
		switch l {
		case "se=1":
			return selinuxOn
		case "se=0":
			return selinuxOff
		}
	}
	return selinuxUnknown
}

// localSELinux reports whether SELinux is on for this machine: false
// without a selinuxenabled in PATH (no process started), else its exit
// status.
func localSELinux(ctx context.Context) bool {
	p, err := exec.LookPath("selinuxenabled")
	if err != nil {
		return false
	}
	return exec.CommandContext(ctx, p).Run() == nil
}

// localSELinuxRename is SELinuxRename on this machine, for Local's
// direct uploads: chcon --reference before os.Rename when dst exists,
// restorecon after it when it did not.
func localSELinuxRename(ctx context.Context, tmp, dst string) error {
	if !localSELinux(ctx) {
		return os.Rename(tmp, dst)
	}
	_, statErr := os.Stat(dst)
	existed := statErr == nil
	if existed {
		if out, err := exec.CommandContext(ctx, "chcon", "--reference="+dst, "--", tmp).CombinedOutput(); err != nil {
			return fmt.Errorf("SELinux is on but chcon could not give the new file the context of the old one (install coreutils' chcon): the file is unchanged: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	if !existed {
		if out, err := exec.CommandContext(ctx, "restorecon", "--", dst).CombinedOutput(); err != nil {
			return fmt.Errorf("SELinux is on but restorecon could not give the new file its policy default context: it is in place with the context it was created with; install policycoreutils and run restorecon on it: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
