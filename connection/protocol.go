package connection

// The persistent shell protocol.
//
// One long-lived `sh` P per (connection, become-user) is fed over its stdin
// (no pty). At start it creates a private 0700 directory D (mktemp -d,
// removed by an EXIT trap), reports its pid, and learns a random 128-bit
// sentinel K from our stdin (never on any argv, never exported, unset in
// commands). Each command is sent as (shell variables are really named
// __opsmop_K, __opsmop_D, ...; the exact text is in shell_run.sh,
// shell_run_stdin.sh, shell_run_inline.sh and shell_frame.sh):
//
//	{ : ; printf %s '<script>'; } >"$D/s"      # via the printf builtin
//	{ : ; printf %s '<stdin>'; ...; } >"$D/i"  # only when stdin is given
//	(eval "unset K D Q j r; . '$Q/s'") <"$D/i"|</dev/null &
//	j=$!; wait "$j"; r=$?; printf '%sR%s\n' "$K" "$r"; printf '%sE' "$K" >&2
//
// The command writes straight into the session's stdout and stderr
// channels, which stay apart; when it has ended the shell appends K "R"
// exit-status "\n" to stdout and K "E" to stderr. The reader splits each
// stream on K only, so any bytes (binary, NUL, no trailing newline, text
// that looks like a frame) pass unchanged: K is random per session and no
// command can know it by accident. Scripts and stdin reach files through
// the builtin printf with single-quoted arguments (NUL bytes as \000 in a
// printf format): nothing is on an argv, and no command reads the shell's
// own stdin (dash reads its input in blocks; a command reading it would eat
// the protocol).
//
// Each command runs in a subshell S of P: a fork, no exec. Creating
// processes is most of what a command costs on a host, and a fork of the
// running shell costs less than starting a new sh (fork and exec); the
// measurements are in docs/ssh.md.
// The subshell isolates it: `cd`, `exit`, `exec`, `set -e`, traps,
// variables and umask stay in S, and P's traps are reset there. S unsets
// P's variables, then sources the script file with `.` (Q is D quoted for
// eval, so the path needs no variable once they are gone).
//
// Probes marked Inline (opsmop's own, which keep the contract described
// at Probe) skip S: P sources the file itself with stdin from /dev/null,
// takes the status, unsets the variables the probe declared, and frames
// the end as above: no fork at all for a probe that runs only builtins.
//
// Starting P costs no round trip of its own beyond what sshd imposes. The
// session channel is opened (one round trip: the channel's id), "exec
// /bin/sh" (or a sudo line, a shell.LoginLine: every login shell parses
// both) is sent without want-reply, and the init script (shell_init.sh:
// K, D in the first temp directory that works, the traps, the kill
// function, then the init frame K "I" pid on stdout and K "I" on stderr;
// or, when no temp directory works, K "X" reason, which fails the host
// with *ShellStartError) is queued right behind it.
// OpenSSH opens a session's window only when the command has started, so
// the init script leaves with sshd's window adjust (one round trip), and
// the first command follows it at once: that command's run reads the init
// frame before its own results, so init and first command share a round
// trip. The init frame is checked in full (junk limit, pid, sudo
// failures); a host with no usable sh closes the channel before printing
// it, nothing of the first command ran, and the slot falls back to one
// exec channel per command (not under sudo), that command included: each
// a LoginLine whose output must carry random start and end markers
// (exec.go), else *UnprovenError. If
// instead the frame is garbled or buried in junk while the shell lives
// on, the first command may have run there: that run fails rather than
// running it twice, and later ones use exec channels. The kill helper
// needs P's pid, so a command's timeout is armed only once the frame is
// read. Under sudo with a password the handshake (prompt, password, ready
// marker) is done before the init script is written; with sudo -n (no
// password) sudo reads no stdin, so the handshake is read with the frame.
//
// At the end (Pool.Close) P's stdin gets EOF and the channel is closed
// without waiting for P's exit status: sshd hands P all its input and the
// EOF, and P's EXIT trap removes D and the registered files (below) after
// opsmop has gone.
//
// Files that must not outlive the connection (an upload's temp file) are
// registered with P before they are created: P itself (no subshell, no
// output, no frame) appends `[ ! -e 'path' ] || rm -f -- 'path'` to D/u
// (no process for a file that is gone, as it is after a successful
// upload), and its EXIT trap sources D/u before removing D. When the
// connection dies, sshd closes P's stdin, P exits and the trap removes
// them.
//
// P traps EXIT only (to remove D when its stdin ends): bash, when it is
// sh, can lose a signal that a command sends to a child it has just
// forked if P traps that signal. A command's stdin file is emptied as
// soon as the command ends, so no data outlives it even if P is killed.
//
// `$$` in a subshell is P's pid, and P's process group is the session's,
// shared by every command. So that `kill $$` and `kill 0` / `kill -- -$$`
// (any signal) still mean "this command" and not P, P defines a `kill`
// function, inherited by S and its subshells: it maps $$ to S (the
// ancestor of the caller whose parent is P, found through /proc with
// builtins) and 0 or -$$ to S and all its descendants (the caller last),
// then runs the builtin. It costs nothing unless such an argument is
// given. Other uses of $$ (pid files, temp names, `/bin/kill $$`,
// `sh -c "kill $$"`) see P's pid, the same for all commands of the shell.
//
// A command that outlives command_timeout or its context is killed with
// every descendant (watchdog.go): a short helper session running as the
// same user (sudo included) finds P's children (S) and their descendants
// through /proc with builtins, stops them all (repeating until no new one
// appears, so a forking command cannot outrun it) and kills them
// (watchdog_kill.sh, sent as a LoginLine, bounded to 4 s and proven by a
// "-killed" marker). There is no process group to signal (S is in P's
// group and dash has no job control without a tty), and an SSH "signal"
// request would reach P's whole group and orphan a command's children
// before they could be found: it is only the last resort, when the helper
// fails or the command still runs 5 s after the timeout, followed by
// tearing P down (*KillError). The shell's wait then returns, the frame
// completes and the shell stays in use. A background process a command
// leaves behind that keeps writing to its inherited stdout/stderr shows
// up in the output of later commands (redirect daemons' output); one that
// was reparented away is not killed.
//
// This file holds the protocol's Go half: the text written for each
// command and the reading of frames. shell.go starts and ends P, run.go
// runs commands through it, watchdog.go kills them, exec.go is the
// fallback for hosts without a usable sh.

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/opsmop/opsmop/internal/shell"
)

// maxJunk bounds what we skip before the init frame (login-script output).
const maxJunk = 1 << 20

// command is one command for the persistent shell.
type command struct {
	script   string
	stdin    []byte
	hasStdin bool
	inline   bool     // run in the shell itself (Probe.Inline), never with stdin
	vars     []string // unset after an inline run
	// step: a RunSteps command, run or not by mode (steps.go); first:
	// the batch's first, which resets its state; temps: files to
	// register for removal at exit before it.
	step  bool
	mode  StepMode
	first bool
	temps []string
	// writeTo, writeMode: Step.WriteTo and Step.WriteMode.
	writeTo   string
	writeMode uint32
}

// initScript is the persistent shell's start-up script for sentinel k:
// the line that sets __opsmop_K, then shell_init.sh.
func initScript(k []byte) string {
	return "__opsmop_K=" + string(k) + "\n" + scriptBody(shellInitFile) + "\n"
}

// writeCommand appends the protocol text of one command: its script (and
// stdin) written to the private directory, the line that runs it
// (shell_run.sh, shell_run_stdin.sh or shell_run_inline.sh) and the end
// frame (shell_frame.sh). A RunSteps command is wrapped by
// writeStepCommand.
func writeCommand(b *strings.Builder, c command) {
	if c.step {
		writeStepCommand(b, c)
		return
	}
	writeRun(b, c)
	b.WriteString("\n")
	b.WriteString(scriptBody(shellFrameFile))
	b.WriteString("\n")
}

// writeRun appends the writing of c's script (and stdin) and the line
// that runs it, which sets __opsmop_r to its exit status.
func writeRun(b *strings.Builder, c command) {
	b.WriteString("{ ")
	writePrintf(b, []byte(c.script))
	b.WriteString("} >\"$__opsmop_D/s\"\n")
	switch {
	case c.inline && !c.hasStdin:
		b.WriteString(scriptBody(shellRunInlineFile))
		if len(c.vars) > 0 {
			b.WriteString("; unset " + strings.Join(c.vars, " "))
		}
	case c.hasStdin:
		b.WriteString("{ ")
		writePrintf(b, c.stdin)
		b.WriteString("} >\"$__opsmop_D/i\"\n")
		b.WriteString(scriptBody(shellRunStdinFile))
	default:
		b.WriteString(scriptBody(shellRunFile))
	}
}

// writePrintfChain is writePrintf with the commands joined by "&&", so
// that its status is the first failure's: at least one command (": "),
// each followed by " && " but the last, then "; ".
func writePrintfChain(b *strings.Builder, data []byte) {
	b.WriteString(strings.Join(printfCommands(data), " && ") + "; ")
}

// writePrintf appends builtin printf commands (each followed by "; ")
// that write exactly data, in chunks: printf %s 'chunk' when the chunk has
// no NUL byte (no argument can hold one), else printf 'format' with \ and
// % escaped and NUL as \000.
func writePrintf(b *strings.Builder, data []byte) {
	for _, c := range printfCommands(data) {
		b.WriteString(c + "; ")
	}
}

// printfCommands are the commands of writePrintf: ":" then one printf
// per chunk.
func printfCommands(data []byte) []string {
	const chunk = 32 * 1024
	cmds := []string{":"}
	for len(data) > 0 {
		part := data[:min(len(data), chunk)]
		data = data[len(part):]
		if bytes.IndexByte(part, 0) < 0 {
			cmds = append(cmds, "printf %s "+shell.Quote(string(part)))
			continue
		}
		var f strings.Builder
		for j, c := range part {
			switch {
			case c == 0:
				f.WriteString(`\000`)
			case c == '\\':
				f.WriteString(`\\`)
			case c == '%':
				f.WriteString("%%")
			case c == '-' && j == 0:
				// A format that starts with '-' is taken for an
				// option ("printf: Illegal option").
				f.WriteString(`\055`)
			default:
				f.WriteByte(c)
			}
		}
		cmds = append(cmds, "printf "+shell.Quote(f.String()))
	}
	return cmds
}

// marker is the frame marker with tag: the sentinel K then 'I' (init),
// 'R' (end of a command's stdout, the exit status follows) or 'E' (end of
// its stderr).
func (sh *pshell) marker(tag byte) []byte {
	m := make([]byte, 0, len(sh.k)+1)
	m = append(m, sh.k...)
	return append(m, tag)
}

// readUntil returns the bytes before marker, consuming both. limit >= 0
// bounds how many bytes may precede it.
func readUntil(r *bufio.Reader, marker []byte, limit int) ([]byte, error) {
	last := marker[len(marker)-1]
	var acc []byte
	for {
		chunk, err := r.ReadSlice(last)
		acc = append(acc, chunk...)
		if err == nil && bytes.HasSuffix(acc, marker) {
			return acc[:len(acc)-len(marker)], nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return acc, err
		}
		if limit >= 0 && len(acc) > limit+len(marker) {
			return nil, fmt.Errorf("protocol error: %d bytes of unexpected output", len(acc))
		}
	}
}
