package connection

// The run API of SSHHost: Run and RunProbes hand commands to the
// identity's persistent shell (protocol.go), or on a host without a usable
// sh to one exec channel each (exec.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

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

// RunProbes runs read-only probes in order, pipelined: all of them are
// written to the persistent shell at once and the results read back, so N
// probes cost one round trip. Probes that keep the inline contract (see
// Probe) run in the persistent shell itself, the others in a subshell each.
// Results are in the order of probes. On error (timeout, cancellation,
// lost connection) the results of the probes that completed are returned
// with it and the rest do not run (the shell is replaced). On a host
// without a usable sh every probe gets its own exec channel.
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

// run runs cmds in the identity's persistent shell, in one round trip, or
// one exec channel each on a host without a usable sh. It returns the
// results of the commands that completed, with the error that stopped the
// others; a shell aborted on the way is replaced at the next run.
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
	res, err := h.runShell(ctx, s, cmds)
	if h.retryWithTTY(err) {
		res, err = h.runShell(ctx, s, cmds)
	}
	if err != nil || !s.execMode {
		return res, err
	}
	if len(cmds) > 0 && cmds[0].step {
		// One exec channel per command: the steps' rules apply in Go.
		steps := make([]Step, len(cmds))
		for i, c := range cmds {
			st := Step{Script: c.script, Mode: c.mode, WriteTo: c.writeTo, WriteMode: c.writeMode}
			if c.hasStdin || c.writeTo != "" {
				st.Stdin = c.stdin
			}
			st.Script, st.Stdin = StepScript(st)
			steps[i] = st
		}
		return runStepsInGo(steps, func(st Step) (Result, error) {
			r, err := h.execRunSlot(ctx, s, stepCommands([]Step{st})[:1:1])
			if err != nil {
				return Result{}, err
			}
			return r[0], nil
		})
	}
	return h.execRunSlot(ctx, s, cmds)
}

// runShell is run's work in the persistent shell: it starts the shell if
// needed and runs cmds there, or switches the slot to exec mode (and
// returns no error) when the first run finds no usable sh.
func (h *SSHHost) runShell(ctx context.Context, s *shellSlot, cmds []command) ([]Result, error) {
	if err := h.ensureShell(ctx, s); err != nil {
		return nil, err
	}
	if !s.execMode {
		res, err := s.sh.run(ctx, h, cmds)
		if s.sh.isAborted() {
			s.sh.shutdown()
			s.sh = nil
		}
		if _, ok := errors.AsType[*ShellStartError](err); ok {
			s.failed = err // the host must be fixed: no retry, no fallback
		}
		if !errors.Is(err, errNoShell) {
			return res, err
		}
		// The first run found no usable sh: one exec channel per command
		// from now on, this run's included unless they may have run.
		s.execMode = true
		s.noShell = err.Error()
		if errors.Is(err, errShellAlive) {
			return nil, fmt.Errorf("host %s: %w", h.name, err)
		}
	}
	return nil, nil
}

// run writes cmds to the shell at once and reads their results in order,
// after the init frame if the shell is new (finishInit). The watchdog
// kills a command that outlives h's command timeout or ctx. On an error
// the results before it are returned with it; the shell is aborted (the
// caller replaces it) unless the error is a killed command and no later
// command was pending.
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
		if werr := wd.err(ctx, wd.disarm()); werr != nil {
			err = werr
		} else {
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
