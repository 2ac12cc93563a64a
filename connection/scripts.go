package connection

import (
	_ "embed"
	"strings"
)

// The shell scripts opsmop sends to targets are the .sh files beside this
// one, embedded here, so that `make lint` checks them as shell (shellcheck;
// sh -n under dash, bash --posix and busybox ash). Every file opens with a
// header, its lines up to the first empty one: comments for readers and
// shellcheck directives, never sent (scriptBody cuts it off). A script
// that needs values from Go gets them from assignments Go sends before
// it (or, for shell_run_inline.sh, a command appended to its line), never
// by substitution inside it, so the file checked is the text that runs.

var (
	//go:embed shell_init.sh
	shellInitFile string
	//go:embed shell_run.sh
	shellRunFile string
	//go:embed shell_run_stdin.sh
	shellRunStdinFile string
	//go:embed shell_run_inline.sh
	shellRunInlineFile string
	//go:embed shell_frame.sh
	shellFrameFile string
	//go:embed shell_run_exec.sh
	shellRunExecFile string
	//go:embed watchdog_kill.sh
	watchdogKillFile string
	//go:embed sftp_server.sh
	sftpServerFile string
)

// scriptBody returns the script of an embedded .sh file: the text after
// its header (the lines up to the first empty one), without the final
// newline. Callers add the line ends they need: a script that goes through
// the login shell (sftp_server.sh) must stay one line.
func scriptBody(file string) string {
	_, body, _ := strings.Cut(file, "\n\n")
	return strings.TrimSuffix(body, "\n")
}
