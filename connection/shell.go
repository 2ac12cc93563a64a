package connection

// The persistent shell protocol.
//
// One long-lived `sh` P per (connection, become-user) is fed over its stdin
// (no pty). At start it creates a private 0700 directory D (mktemp -d,
// removed by an EXIT trap), reports its pid, and learns a random 128-bit
// sentinel K from our stdin (never on any argv, never exported, unset in
// commands). Each command is sent as (shell variables are really named
// __opsmop_K, __opsmop_D, ...):
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
// Each command runs in a subshell S of P: a fork, no exec (~1.5-2 ms on
// the 2-core dev VM, where a fork+exec of sh costs ~4.5 ms; Run("true")
// went from ~9.5 ms with `setsid sh "$D/s"` to ~2.5-3 ms, see
// docs/ssh.md).
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
// session channel is opened (one round trip: the channel's id), "exec sh"
// (or sudo ... sh) is sent without want-reply, and the init script (K,
// D, the traps, the kill function, then the init frame K "I" pid on
// stdout and K "I" on stderr) is queued right behind it. OpenSSH opens a
// session's window only when the command has started, so the init
// script leaves with sshd's window adjust (one round trip), and the first
// command follows it at once: that command's run reads the init frame
// before its own results, so init and first command share a round trip.
// The init frame is checked as it always was (junk limit, pid, sudo
// failures); a host with no usable sh closes the channel before
// printing it, nothing of the first command ran, and the slot falls back
// to one exec channel per command (not under sudo), that command
// included. If instead the frame is garbled or buried in junk while the
// shell lives on, the first command may have run there: that run fails
// rather than running it twice, and later ones use exec channels. The kill helper needs
// P's pid, so a command's timeout is armed only once the frame is read.
// Under sudo with a password the handshake (prompt, password, ready
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
// upload), and its EXIT trap
// sources D/u before removing D. When the connection dies, sshd closes
// P's stdin, P exits and the trap removes them.
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
// every descendant: a short helper session running as the same user (sudo
// included) finds P's children (S) and their descendants through /proc
// with builtins, stops them all (repeating until no new one appears, so a
// forking command cannot outrun it) and kills them. There is no process
// group to signal (S is in P's group and dash has no job control without
// a tty), and an SSH "signal" request would reach P's whole group and
// orphan a command's children before they could be found. The shell's
// wait then returns, the frame completes and the shell stays in use. A
// background process a command leaves behind that keeps writing to its
// inherited stdout/stderr shows up in the output of later commands
// (redirect daemons' output); one that was reparented away is not killed.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/internal/shell"
)

// sshKillGrace is how long a killed command may take to end (and the kill
// helper to run) before the shell is torn down instead.
const sshKillGrace = 10 * time.Second

// maxJunk bounds what we skip before the init frame (login-script output).
const maxJunk = 1 << 20

// shellSlot holds the persistent shell of one identity on a connection.
// Its mutex serialises commands.
type shellSlot struct {
	mu       sync.Mutex
	sh       *pshell
	execMode bool // the host has no usable sh: one exec channel per command
}

// close ends an idle shell politely. A shell busy with a command is left
// alone: closing the connection (which the caller does next) ends it, and
// the command's Run returns an error.
func (s *shellSlot) close() {
	if !s.mu.TryLock() {
		return
	}
	sh := s.sh
	s.sh = nil
	s.mu.Unlock()
	if sh != nil {
		sh.shutdown()
	}
}

// pshell is one running persistent shell.
type pshell struct {
	ch      ssh.Channel // the session channel: stdin, stdout, Stderr()
	release func()
	out     *bufio.Reader
	errs    *stream
	k       []byte
	pid     int // the persistent shell's pid on the host; 0 until the init frame is read

	// The start-up exchange not read yet (see startShell): the first run
	// reads the init frame, and before it the sudo handshake when sudo
	// runs without a password (-n reads no stdin, so nothing waited).
	initPending   bool
	sudoPending   bool
	prompt, ready string // the sudo prompt and ready markers

	// wmu orders the writes to the shell's stdin: the init script (held
	// from startShell until it is written), then commands and
	// registrations.
	wmu sync.Mutex

	exited  chan struct{} // closed when the channel's requests end (channel closed)
	exitMu  sync.Mutex
	exitMsg string // "exit status N" or "signal S", once sshd reported it

	abortOnce sync.Once
	aborted   chan struct{}
}

type command struct {
	script   string
	stdin    []byte
	hasStdin bool
	inline   bool     // run in the shell itself (Probe.Inline), never with stdin
	vars     []string // unset after an inline run
}

var errNoShell = errors.New("no usable sh on the host")

// errShellAlive marks an errNoShell where the shell did not end (garbled
// or too much output before the init frame): the commands written behind
// the init script may have run, so they are not run again in exec mode.
var errShellAlive = errors.New("the commands sent with the shell's start may have run there: not run again")

// Run runs script with sh on the host (under sudo when the handle is
// configured so), feeding stdin if non-nil (read fully into memory: use
// Upload for large data). A non-zero exit is not an error: it is in
// Result.ExitCode. err is for transport failures (*UnreachableError),
// sudo failures (*SudoError), timeouts (*TimeoutError) and cancellation.
func (h *SSHHost) Run(ctx context.Context, script string, stdin io.Reader) (Result, error) {
	c := command{script: script}
	if stdin != nil {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return Result{}, fmt.Errorf("host %s: reading stdin for command: %w", h.name, err)
		}
		c.stdin, c.hasStdin = b, true
	}
	res, err := h.run(ctx, []command{c})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// RunBatch runs scripts in order, pipelined: all of them are written to the
// persistent shell at once and the results read back, so N read-only probes
// cost one round trip. Results are in the order of scripts. On error
// (timeout, cancellation, lost connection) the results of the commands
// that completed are returned with it and the rest do not run (the shell
// is replaced).
func (h *SSHHost) RunBatch(ctx context.Context, scripts []string) ([]Result, error) {
	probes := make([]Probe, len(scripts))
	for i, s := range scripts {
		probes[i] = Probe{Script: s}
	}
	return h.RunProbes(ctx, probes)
}

// RunProbes is RunBatch for read-only probes, some of which may keep the
// inline contract (see Probe): those run in the persistent shell itself,
// the others in a subshell each, as RunBatch runs them. On a host without
// a usable sh every probe gets its own exec channel.
func (h *SSHHost) RunProbes(ctx context.Context, probes []Probe) ([]Result, error) {
	if len(probes) == 0 {
		return nil, nil
	}
	cmds := make([]command, len(probes))
	for i, p := range probes {
		cmds[i] = command{script: p.Script, inline: p.Inline && inlineVars(p.Vars), vars: p.Vars}
	}
	return h.run(ctx, cmds)
}

// inlineVars reports whether every name is one an inline script may set:
// a shell variable name that is not one of the shell's own (__opsmop_).
func inlineVars(names []string) bool {
	for _, n := range names {
		if n == "" || strings.HasPrefix(n, "__opsmop_") {
			return false
		}
		for i, c := range n {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

func (h *SSHHost) slot() *shellSlot {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.shells[h.ident.key()]
	if s == nil {
		s = &shellSlot{}
		c.shells[h.ident.key()] = s
	}
	return s
}

func (h *SSHHost) run(ctx context.Context, cmds []command) ([]Result, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := h.c.deadErr(); err != nil {
		return nil, err
	}
	s := h.slot()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := h.ensureShell(ctx, s); err != nil {
		return nil, err
	}
	if !s.execMode {
		res, err := s.sh.run(ctx, h, cmds)
		if s.sh.isAborted() {
			s.sh.shutdown()
			s.sh = nil
		}
		if !errors.Is(err, errNoShell) {
			return res, err
		}
		// The first run found no usable sh: one exec channel per command
		// from now on, this run's included unless they may have run.
		s.execMode = true
		if errors.Is(err, errShellAlive) {
			return nil, fmt.Errorf("host %s: %w", h.name, err)
		}
	}
	out := make([]Result, 0, len(cmds))
	for _, c := range cmds {
		r, err := h.execRun(ctx, c)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ensureShell starts the slot's persistent shell unless it runs or the
// host has none (execMode). The caller holds s.mu. Whether the shell
// started is only known at its first run (see startShell).
func (h *SSHHost) ensureShell(ctx context.Context, s *shellSlot) error {
	if s.sh != nil || s.execMode {
		return nil
	}
	sh, err := h.startShell(ctx)
	if err != nil {
		return err
	}
	s.sh = sh
	return nil
}

// removeOnExit registers path with the persistent shell: when the shell
// ends (at the end of the run, or because the connection died) it removes
// path. It does not wait for the host, it only queues the request behind
// the commands already sent; it does nothing on a host without a usable
// sh. Callers remove path themselves when they can; this is the fallback.
func (h *SSHHost) removeOnExit(ctx context.Context, path string) error {
	if err := h.check(); err != nil {
		return err
	}
	s := h.slot()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := h.ensureShell(ctx, s); err != nil {
		return err
	}
	if s.execMode {
		return nil
	}
	// The test is a builtin: files renamed into place (the usual end of
	// an upload) cost no process at exit.
	line := "printf '%s\\n' " + shell.Quote("[ ! -e "+shell.Quote(path)+" ] || rm -f -- "+shell.Quote(path)) + ` >>"$__opsmop_D/u"` + "\n"
	if err := s.sh.write(line); err != nil {
		return h.c.lost(fmt.Errorf("host %s: register temp file: %w", h.name, err))
	}
	return nil
}

// startShell starts the persistent shell (under sudo if configured) and
// queues its init script, without waiting for the host: the exec request
// goes out without want-reply, the init script as soon as sshd opens the
// session's window (which it does when the command has started), and the
// first run's commands right behind it; that run reads the init frame
// first (see finishInit), so init and the first commands share one round
// trip. A refused exec closes the channel, which finishInit reports. Under
// sudo with a password the sudo handshake is done here: the password may
// only be written after sudo's prompt, and the init script only after it.
func (h *SSHHost) startShell(ctx context.Context) (*pshell, error) {
	sc, release, err := h.c.openChannel(ctx)
	if err != nil {
		return nil, err
	}
	sh := &pshell{ch: sc.ch, release: release, k: []byte(randHex(16)),
		aborted: make(chan struct{}), exited: make(chan struct{})}
	go sh.watchRequests(sc.reqs)
	sh.out = bufio.NewReaderSize(sc.ch, 64*1024)
	sh.errs = newStream(sc.ch.Stderr(), true)
	fail := func(err error) (*pshell, error) {
		sh.abort()
		sh.shutdown()
		return nil, err
	}
	// exec: the login shell need not stay around between sshd and the
	// persistent shell.
	cmd := "exec sh"
	if h.ident.sudo {
		sh.prompt = "[opsmop-sudo-" + randHex(8) + "] "
		sh.ready = "opsmop-ready-" + randHex(8)
		cmd = "exec " + sudoCommand(h.ident, !h.sudoPw.IsZero(), sh.prompt, sh.ready, "exec sh")
	}
	if _, err := sc.ch.SendRequest("exec", false, ssh.Marshal(struct{ Command string }{cmd})); err != nil {
		return fail(h.c.lost(fmt.Errorf("host %s: start shell: %w", h.name, err)))
	}
	switch {
	case h.ident.sudo && !h.sudoPw.IsZero():
		if err := h.sudoHandshake(ctx, sh.errs, sh.ch, sh.prompt, sh.ready, h.connTO); err != nil {
			return fail(h.c.lost(err))
		}
	case h.ident.sudo:
		// sudo -n never reads stdin: what we write waits for the shell.
		sh.sudoPending = true
	default:
		sh.errs.settle(0)
	}
	// sshd opens the session's window only when the command has started,
	// so the init script waits for that in the background (a failed write
	// shows as a failed read of the init frame); whatever is written next
	// waits for wmu.
	sh.initPending = true
	sh.wmu.Lock()
	go func() {
		defer sh.wmu.Unlock()
		_, _ = io.WriteString(sh.ch, initScript(sh.k))
	}()
	return sh, nil
}

// write writes text to the shell's stdin, after what was written before.
func (sh *pshell) write(text string) error {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	_, err := io.WriteString(sh.ch, text)
	return err
}

// finishInit reads what startShell did not wait for: the sudo handshake
// (sudo without a password) and the init frame with the shell's pid,
// bounded by connect_timeout and ctx. On failure the shell is aborted; a
// host without a usable sh (not under sudo) gives errNoShell.
func (sh *pshell) finishInit(ctx context.Context, h *SSHHost) error {
	sh.initPending = false
	if sh.sudoPending {
		if err := h.sudoHandshake(ctx, sh.errs, sh.ch, sh.prompt, sh.ready, h.connTO); err != nil {
			sh.abort()
			return h.c.lost(err)
		}
	}
	stop := context.AfterFunc(ctx, sh.abort)
	t := time.AfterFunc(h.connTO, sh.abort)
	var line []byte
	_, rerr := readUntil(sh.out, sh.marker('I'), maxJunk)
	if rerr == nil {
		line, rerr = sh.out.ReadSlice('\n')
	}
	if rerr == nil {
		// Login-script noise on stderr ends here too.
		_, rerr = sh.errs.readUntil(sh.marker('I'))
	}
	t.Stop()
	stop()
	if rerr == nil {
		pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
		if err == nil && pid > 1 {
			sh.pid = pid
			return nil
		}
		rerr = fmt.Errorf("protocol error: bad init line %q", line)
	}
	timedOut := sh.isAborted() // by the timer or ctx
	sh.abort()
	if err := ctx.Err(); err != nil {
		return err
	}
	if d := h.c.deadErr(); d != nil {
		return d
	}
	if timedOut {
		return fmt.Errorf("host %s: the shell did not start within connect_timeout %s (stderr: %q)", h.name, h.connTO, sh.errTail())
	}
	ended := errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)
	if ended {
		rerr = fmt.Errorf("%w (%s)", rerr, sh.exitStatus())
	}
	if !h.ident.sudo {
		// sh missing or unusable: fall back to one exec per command.
		if !ended {
			return fmt.Errorf("%w: %v (stderr: %q); %w", errNoShell, rerr, sh.errTail(), errShellAlive)
		}
		return fmt.Errorf("%w: %v (stderr: %q)", errNoShell, rerr, sh.errTail())
	}
	return h.c.lost(fmt.Errorf("host %s: the shell under sudo ended at start: %v (stderr: %q)", h.name, rerr, sh.errTail()))
}

// watchRequests answers the channel's requests (sshd sends none that want
// a reply) and notes how the shell ended; it closes sh.exited when the
// channel is closed.
func (sh *pshell) watchRequests(reqs <-chan *ssh.Request) {
	defer close(sh.exited)
	for req := range reqs {
		msg := ""
		switch req.Type {
		case "exit-status":
			var m struct{ Status uint32 }
			if ssh.Unmarshal(req.Payload, &m) == nil {
				msg = "exit status " + strconv.Itoa(int(m.Status))
			}
		case "exit-signal":
			var m struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}
			if ssh.Unmarshal(req.Payload, &m) == nil {
				msg = "signal " + m.Signal
			}
		}
		if msg != "" {
			sh.exitMu.Lock()
			sh.exitMsg = msg
			sh.exitMu.Unlock()
		}
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
	}
}

// exitStatus describes how the shell's channel ended, waiting briefly for
// sshd's report (it follows the end of the output). A channel closed
// without one is an exec that was refused.
func (sh *pshell) exitStatus() string {
	select {
	case <-sh.exited:
	case <-time.After(500 * time.Millisecond):
	}
	sh.exitMu.Lock()
	defer sh.exitMu.Unlock()
	switch {
	case sh.exitMsg != "":
		return "the shell ended with " + sh.exitMsg
	case isClosed(sh.exited):
		return "the session closed without an exit status: exec refused?"
	}
	return "no exit status yet"
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// abort tears the session down so that every read and write on it fails;
// the shell is then replaced.
func (sh *pshell) abort() {
	sh.abortOnce.Do(func() {
		close(sh.aborted)
		_ = sh.ch.CloseWrite()
		_ = sh.ch.Close()
	})
}

func (sh *pshell) isAborted() bool {
	return isClosed(sh.aborted)
}

// shutdown ends the shell and frees its session without waiting for the
// host: EOF on its stdin ends the shell, whose EXIT trap removes the
// private directory and the registered files. sshd hands the shell all
// its input and the EOF even when the connection is closed right after
// (what Pool.Close does next), so no round trip is spent on it.
func (sh *pshell) shutdown() {
	sh.abort()
	sh.release()
}

// errTail is the shell's last stderr without our frame markers.
func (sh *pshell) errTail() string {
	t := sh.errs.tail()
	for _, tag := range []byte("EI") {
		t = strings.ReplaceAll(t, string(sh.marker(tag)), "")
	}
	return t
}

func (sh *pshell) marker(tag byte) []byte {
	m := make([]byte, 0, len(sh.k)+1)
	m = append(m, sh.k...)
	return append(m, tag)
}

func (sh *pshell) run(ctx context.Context, h *SSHHost, cmds []command) ([]Result, error) {
	var b strings.Builder
	for _, c := range cmds {
		writeCommand(&b, c)
	}
	text := b.String()
	// On a new shell the commands follow the init script at once; the
	// init frame is read before their results.
	writeDone := make(chan error, 1)
	go func() { writeDone <- sh.write(text) }()
	if sh.initPending {
		if err := sh.finishInit(ctx, h); err != nil {
			return nil, err
		}
	}
	// The watchdog starts once the shell's pid is known: kill needs it.
	wd := &watchdog{sh: sh, h: h}
	stopCtx := context.AfterFunc(ctx, func() { wd.fire(firedCtx) })
	defer func() {
		stopCtx()
		wd.finish()
	}()
	// stderr is read concurrently: a command may fill it while we wait on
	// its stdout.
	type seg struct {
		b   []byte
		err error
	}
	errSegs := make(chan seg, len(cmds))
	go func() {
		for range cmds {
			b, err := sh.errs.readUntil(sh.marker('E'))
			errSegs <- seg{b, err}
			if err != nil {
				return
			}
		}
	}()
	out := make([]Result, 0, len(cmds))
	fail := func(err error) ([]Result, error) {
		switch wd.disarm() {
		case firedTimeout:
			err = &TimeoutError{Host: h.name, Timeout: h.cmdTO}
		case firedCtx:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = &TimeoutError{Host: h.name}
			} else {
				err = ctx.Err()
			}
		default:
			err = h.c.lost(fmt.Errorf("host %s: persistent shell failed: %w (stderr: %q)", h.name, err, sh.errTail()))
		}
		sh.abort()
		return out, err
	}
	for i := range cmds {
		wd.arm(h.cmdTO)
		var res Result
		var err error
		if res.Stdout, err = readUntil(sh.out, sh.marker('R'), -1); err != nil {
			return fail(err)
		}
		line, err := sh.out.ReadSlice('\n')
		if err != nil {
			return fail(err)
		}
		if res.ExitCode, err = strconv.Atoi(strings.TrimSpace(string(line))); err != nil {
			return fail(fmt.Errorf("protocol error: bad exit status %q", line))
		}
		sg := <-errSegs
		if sg.err != nil {
			return fail(sg.err)
		}
		res.Stderr = sg.b
		switch wd.disarm() {
		case firedTimeout:
			if i < len(cmds)-1 {
				sh.abort()
			}
			return out, &TimeoutError{Host: h.name, Timeout: h.cmdTO}
		case firedCtx:
			if i < len(cmds)-1 {
				sh.abort()
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return out, &TimeoutError{Host: h.name}
			}
			return out, ctx.Err()
		}
		out = append(out, res)
	}
	if err := <-writeDone; err != nil {
		return fail(err)
	}
	return out, nil
}

// initScript is the persistent shell's start-up script for sentinel k:
// the private directory, its quoted form for eval (__opsmop_Q), the traps
// that remove it, the `kill` function commands run with (see the header
// comment; __opsmop_cmd finds the running command's pid, __opsmop_tree its
// descendants), and the init frame (K "I" pid "\n" on stdout, K "I" on
// stderr).
func initScript(k []byte) string {
	return "__opsmop_K=" + string(k) + "\n" + shellInit
}

const shellInit = `__opsmop_D=$(mktemp -d 2>/dev/null) || __opsmop_D=
if [ -z "$__opsmop_D" ]; then __opsmop_D=${TMPDIR:-/tmp}/opsmop.$$; (umask 077; mkdir "$__opsmop_D") || exit 1; fi
(umask 077; : >"$__opsmop_D/s"; : >"$__opsmop_D/i"; : >"$__opsmop_D/u") || exit 1
trap '. "$__opsmop_D/u"; rm -rf "$__opsmop_D"' EXIT
__opsmop_x=$__opsmop_D; __opsmop_Q=
while :; do case $__opsmop_x in
*\'*) __opsmop_Q=$__opsmop_Q${__opsmop_x%%\'*}\'\\\'\'; __opsmop_x=${__opsmop_x#*\'};;
*) __opsmop_Q=$__opsmop_Q$__opsmop_x; break;;
esac; done; unset __opsmop_x
__opsmop_cmd() {
  read -r __opsmop_l 2>/dev/null </proc/self/stat || return 1
  __opsmop_s=${__opsmop_l%% *}
  while :; do
    __opsmop_m=${__opsmop_l%% *}
    __opsmop_l=${__opsmop_l##*\) }; __opsmop_l=${__opsmop_l#* }; __opsmop_l=${__opsmop_l%% *}
    [ "$__opsmop_l" = "$$" ] && return 0
    case $__opsmop_l in '' | 0 | 1 | *[!0-9]*) return 1 ;; esac
    read -r __opsmop_l 2>/dev/null <"/proc/$__opsmop_l/stat" || return 1
  done
}
__opsmop_tree() {
  __opsmop_t=" $__opsmop_m " __opsmop_f=$-
  set +f
  if [ -e "/proc/$__opsmop_m/task/$__opsmop_m/children" ]; then
    __opsmop_q="$__opsmop_m "
    while [ -n "$__opsmop_q" ]; do
      __opsmop_x=${__opsmop_q%% *}; __opsmop_q=${__opsmop_q#* }
      for __opsmop_d in /proc/"$__opsmop_x"/task/*/children; do
        __opsmop_l=
        read -r __opsmop_l 2>/dev/null <"$__opsmop_d" || :
        while [ -n "$__opsmop_l" ]; do
          __opsmop_x=${__opsmop_l%% *}; __opsmop_l=${__opsmop_l#"$__opsmop_x"}; __opsmop_l=${__opsmop_l# }
          case $__opsmop_t in *" $__opsmop_x "*) ;; *) __opsmop_t="$__opsmop_t$__opsmop_x " __opsmop_q="$__opsmop_q$__opsmop_x " ;; esac
        done
      done
    done
  else
    __opsmop_n=1
    while [ "$__opsmop_n" = 1 ]; do
      __opsmop_n=0
      for __opsmop_d in /proc/[0-9]*; do
        case $__opsmop_t in *" ${__opsmop_d#/proc/} "*) continue ;; esac
        read -r __opsmop_l 2>/dev/null <"$__opsmop_d/stat" || continue
        __opsmop_l=${__opsmop_l##*\) }; __opsmop_l=${__opsmop_l#* }
        case $__opsmop_t in *" ${__opsmop_l%% *} "*) __opsmop_t="$__opsmop_t${__opsmop_d#/proc/} " __opsmop_n=1 ;; esac
      done
    done
  fi
  case $__opsmop_f in *f*) set -f ;; esac
  case $__opsmop_t in *" $__opsmop_s "*) __opsmop_t="${__opsmop_t%% "$__opsmop_s" *} ${__opsmop_t#* "$__opsmop_s" }$__opsmop_s " ;; esac
  :
}
kill() {
  __opsmop_k=$# __opsmop_p= __opsmop_m=
  while [ "$__opsmop_k" -gt 0 ]; do
    case $__opsmop_p/$1 in
    -s/* | -n/* | /-*) set -- "$@" "$1" ;;
    */"$$" | */-"$$" | */0)
      if [ -z "$__opsmop_m" ] && ! __opsmop_cmd; then
        printf 'kill: %s: the command has ended (in opsmop commands $$ is the persistent shell)\n' "$1" >&2
        unset __opsmop_k __opsmop_p __opsmop_m __opsmop_s __opsmop_l
        return 1
      fi
      if [ "$1" = "$$" ]; then
        set -- "$@" "$__opsmop_m"
      else
        __opsmop_tree
        __opsmop_t=${__opsmop_t# }
        while [ -n "$__opsmop_t" ]; do set -- "$@" "${__opsmop_t%% *}"; __opsmop_t=${__opsmop_t#* }; done
      fi ;;
    *) set -- "$@" "$1" ;;
    esac
    __opsmop_p=$1; shift; __opsmop_k=$((__opsmop_k - 1))
  done
  unset __opsmop_k __opsmop_p __opsmop_m __opsmop_s __opsmop_l __opsmop_t __opsmop_n __opsmop_f __opsmop_d __opsmop_q __opsmop_x
  command kill "$@"
}
printf '%sI%s\n' "$__opsmop_K" "$$"
printf '%sI' "$__opsmop_K" >&2
`

// runAndFrame runs the script $D/s in a subshell (see the header comment),
// waits for it, empties the stdin file if there was one (%s) and frames
// the command's end. wait's stderr is discarded: dash reports "Killed"
// there for a job ended by a signal.
const runAndFrame = `(eval "unset __opsmop_K __opsmop_D __opsmop_Q __opsmop_j __opsmop_r; . '$__opsmop_Q/s'") <%s &
__opsmop_j=$!; wait "$__opsmop_j" 2>/dev/null; __opsmop_r=$?%s
printf '%%sR%%s\n' "$__opsmop_K" "$__opsmop_r"; printf '%%sE' "$__opsmop_K" >&2
`

// runInline runs the script $D/s in the shell itself (Probe.Inline): no
// subshell, no fork; stdin is /dev/null. %s unsets the script's variables.
const runInline = `{ . "$__opsmop_D/s"; } </dev/null; __opsmop_r=$?%s
printf '%%sR%%s\n' "$__opsmop_K" "$__opsmop_r"; printf '%%sE' "$__opsmop_K" >&2
`

// writeCommand appends the protocol text of one command.
func writeCommand(b *strings.Builder, c command) {
	b.WriteString("{ ")
	writePrintf(b, []byte(c.script))
	b.WriteString("} >\"$__opsmop_D/s\"\n")
	if c.inline && !c.hasStdin {
		unset := ""
		if len(c.vars) > 0 {
			unset = "; unset " + strings.Join(c.vars, " ")
		}
		fmt.Fprintf(b, runInline, unset)
		return
	}
	in, empty := "/dev/null", ""
	if c.hasStdin {
		b.WriteString("{ ")
		writePrintf(b, c.stdin)
		b.WriteString("} >\"$__opsmop_D/i\"\n")
		in, empty = `"$__opsmop_D/i"`, `; : >"$__opsmop_D/i"`
	}
	fmt.Fprintf(b, runAndFrame, in, empty)
}

// writePrintf appends builtin printf commands (each followed by "; ")
// that write exactly data, in chunks: printf %s 'chunk' when the chunk has
// no NUL byte (no argument can hold one), else printf 'format' with \ and
// % escaped and NUL as \000.
func writePrintf(b *strings.Builder, data []byte) {
	const chunk = 32 * 1024
	b.WriteString(": ; ")
	for len(data) > 0 {
		part := data[:min(len(data), chunk)]
		data = data[len(part):]
		if bytes.IndexByte(part, 0) < 0 {
			b.WriteString("printf %s ")
			b.WriteString(shell.Quote(string(part)))
			b.WriteString("; ")
			continue
		}
		var f strings.Builder
		for _, c := range part {
			switch c {
			case 0:
				f.WriteString(`\000`)
			case '\\':
				f.WriteString(`\\`)
			case '%':
				f.WriteString("%%")
			default:
				f.WriteByte(c)
			}
		}
		b.WriteString("printf ")
		b.WriteString(shell.Quote(f.String()))
		b.WriteString("; ")
	}
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

const (
	firedNone = iota
	firedTimeout
	firedCtx
	firedDone // the run is over: firing does nothing
)

// watchdog kills the running command when command_timeout passes or ctx
// ends, and tears the shell down if the kill does not end it in time.
type watchdog struct {
	sh *pshell
	h  *SSHHost

	mu       sync.Mutex
	reason   int
	timer    *time.Timer
	grace    *time.Timer
	killDone chan struct{} // closed when the kill has finished
}

func (w *watchdog) arm(timeout time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason != firedNone || timeout <= 0 {
		return
	}
	w.timer = time.AfterFunc(timeout, func() { w.fire(firedTimeout) })
}

func (w *watchdog) fire(reason int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason != firedNone {
		return
	}
	w.reason = reason
	kd := make(chan struct{})
	w.killDone = kd
	go func() {
		defer close(kd)
		w.sh.kill(w.h)
	}()
	w.grace = time.AfterFunc(sshKillGrace, w.sh.abort)
}

// finish ends the watchdog's watch and waits for a kill in flight, so a
// late kill cannot hit the next command.
func (w *watchdog) finish() {
	w.mu.Lock()
	if w.reason == firedNone {
		w.reason = firedDone
	}
	kd := w.killDone
	w.mu.Unlock()
	w.disarm()
	if kd != nil {
		<-kd
	}
}

// disarm stops the timers and reports whether (why) the watchdog fired.
func (w *watchdog) disarm() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if w.grace != nil {
		w.grace.Stop()
		w.grace = nil
	}
	return w.reason
}

// killTreeFunc defines __opsmop_kt PID...: it stops the processes and all
// their descendants (found through /proc, builtins only, repeated until no
// new one appears, so a forking command cannot outrun it), then kills
// them. Daemons that were reparented away are not descendants and survive.
const killTreeFunc = `__opsmop_kt() {
  __k=" $* "; __n=1
  for __p in $*; do kill -s STOP "$__p" 2>/dev/null; done
  while [ "$__n" = 1 ]; do
    __n=0
    for __d in /proc/[0-9]*; do
      __p=${__d#/proc/}
      case "$__k" in *" $__p "*) continue;; esac
      read -r __l 2>/dev/null <"$__d/stat" || continue
      set -- ${__l##*\) }
      case "$__k" in *" $2 "*) __k="$__k$__p "; __n=1; kill -s STOP "$__p" 2>/dev/null;; esac
    done
  done
  for __p in $__k; do kill -s KILL "$__p" 2>/dev/null; done
}`

// killScript kills every child of the persistent shell (pid %d), i.e. the
// running command's subshell, with all its descendants, then the process
// group of each child in case the command made itself a group leader
// (`exec setsid ...`) whose members left the tree.
const killScript = killTreeFunc + `
__c=
for __d in /proc/[0-9]*; do
  read -r __l 2>/dev/null <"$__d/stat" || continue
  set -- ${__l##*\) }
  [ "$2" = %d ] && __c="$__c ${__d#/proc/}"
done
[ -n "$__c" ] && __opsmop_kt $__c
for __p in $__c; do kill -s KILL -- "-$__p" 2>/dev/null; done
exit 0`

// kill kills the running command and its descendants from a helper
// session running as the same user (sudo included); if that fails the
// shell is torn down. No SSH "signal" request is used: sshd delivers it to
// the whole process group of the session, which the command shares with
// the shell, so the command could die before its children were found
// (and sshd refuses it on root logins anyway).
func (sh *pshell) kill(h *SSHHost) {
	if sh.pid <= 1 {
		// Not known (cannot happen: run reads the init frame before it
		// arms the watchdog): never let the script match ppid 0 or 1.
		sh.abort()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sshKillGrace)
	defer cancel()
	if _, err := h.helper(ctx, fmt.Sprintf(killScript, sh.pid)); err != nil {
		sh.abort()
	}
}

// helper runs a short sh script in its own session as the handle's
// identity (sudo included) and returns its output.
func (h *SSHHost) helper(ctx context.Context, script string) (Result, error) {
	sess, release, err := h.c.openSession(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	defer sess.Close()
	stdin, err := sess.StdinPipe()
	if err != nil {
		return Result{}, err
	}
	var stdout bytes.Buffer
	sess.Stdout = &stdout
	stderr, err := sess.StderrPipe()
	if err != nil {
		return Result{}, err
	}
	errs := newStream(stderr, false)
	cmd := "exec sh -c " + shell.Quote(script)
	var prompt, ready string
	if h.ident.sudo {
		prompt = "[opsmop-sudo-" + randHex(8) + "] "
		ready = "opsmop-ready-" + randHex(8)
		cmd = "exec " + sudoCommand(h.ident, !h.sudoPw.IsZero(), prompt, ready, script)
	}
	if err := sess.Start(cmd); err != nil {
		return Result{}, err
	}
	if h.ident.sudo {
		if err := h.sudoHandshake(ctx, errs, stdin, prompt, ready, h.connTO); err != nil {
			return Result{}, err
		}
	} else {
		errs.settle(0)
	}
	stdin.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	err = sess.Wait()
	res := Result{Stdout: stdout.Bytes(), Stderr: []byte(errs.tail())}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		return res, nil
	}
	return res, err
}

// execRun runs one command in its own exec channel: the fallback for hosts
// without a usable sh (the login shell interprets the script).
func (h *SSHHost) execRun(ctx context.Context, c command) (Result, error) {
	sess, release, err := h.c.openSession(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	defer sess.Close()
	var o, e bytes.Buffer
	sess.Stdout, sess.Stderr = &o, &e
	if c.hasStdin {
		sess.Stdin = bytes.NewReader(c.stdin)
	}
	if err := sess.Start(c.script); err != nil {
		return Result{}, h.c.lost(fmt.Errorf("host %s: exec: %w", h.name, err))
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var timeout <-chan time.Time
	if h.cmdTO > 0 {
		t := time.NewTimer(h.cmdTO)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case err = <-done:
	case <-timeout:
		_ = sess.Signal(ssh.SIGKILL)
		return Result{}, &TimeoutError{Host: h.name, Timeout: h.cmdTO}
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Result{}, &TimeoutError{Host: h.name}
		}
		return Result{}, ctx.Err()
	}
	res := Result{Stdout: o.Bytes(), Stderr: e.Bytes()}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		return res, nil
	}
	if err != nil {
		return Result{}, h.c.lost(fmt.Errorf("host %s: exec: %w", h.name, err))
	}
	return res, nil
}
