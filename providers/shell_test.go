package providers

import (
	"errors"
	"strings"
	"testing"
)

func TestShellConverges(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, d *localDir)
		spec  func(d *localDir) *ShellSpec
		first Action
		msg   string // the first check's message, if set
		// again is the second check's action (commands without a guard
		// always run).
		again  Action
		verify func(t *testing.T, d *localDir)
	}{
		{
			name: "creates guard, env and chdir",
			spec: func(d *localDir) *ShellSpec {
				return &ShellSpec{Cmd: `printf '%s' "$GREETING" > out`, Creates: "out", Chdir: d.dir,
					Env: map[string]string{"GREETING": "it's $HOME `x`"}}
			},
			first: Run, again: None,
			verify: func(t *testing.T, d *localDir) {
				if got := readFile(t, d.path("out")); got != "it's $HOME `x`" {
					t.Errorf("env value: got %q; want it verbatim", got)
				}
			},
		},
		{
			name:  "creates exists",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("done"), "", 0o644) },
			spec: func(d *localDir) *ShellSpec {
				return &ShellSpec{Cmd: "touch " + d.path("ran"), Creates: d.path("done")}
			},
			first: None, msg: "skipped: " + "/done exists",
		},
		{
			name:  "removes guard",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("lock"), "", 0o644) },
			spec: func(d *localDir) *ShellSpec {
				return &ShellSpec{Cmd: "rm lock", Removes: "lock", Chdir: d.dir}
			},
			first: Run, again: None,
		},
		{
			name: "unless guard",
			spec: func(d *localDir) *ShellSpec {
				return &ShellSpec{Cmd: "echo x >> log", Unless: "grep -q x log", Chdir: d.dir}
			},
			first: Run, again: None,
			verify: func(t *testing.T, d *localDir) {
				if got := readFile(t, d.path("log")); got != "x\n" {
					t.Errorf("log: got %q; want one line", got)
				}
			},
		},
		{
			name: "onlyif guard",
			setup: func(t *testing.T, d *localDir) {
				writeFile(t, d.path("todo"), "", 0o644)
			},
			spec: func(d *localDir) *ShellSpec {
				return &ShellSpec{Cmd: "rm todo", Onlyif: "test -e todo", Chdir: d.dir}
			},
			first: Run, again: None,
		},
		{
			name: "onlyif false skips",
			spec: func(d *localDir) *ShellSpec {
				return &ShellSpec{Cmd: "touch x", Onlyif: "exit 3", Chdir: d.dir}
			},
			first: None, msg: "skipped: onlyif command failed (exit status 3)",
		},
		{
			name: "no guard always runs",
			spec: func(d *localDir) *ShellSpec {
				return &ShellSpec{Cmd: "echo run >> " + d.path("n")}
			},
			first: Run, again: Run,
		},
		{
			name: "missing chdir: guards not evaluated",
			spec: func(d *localDir) *ShellSpec {
				return &ShellSpec{Cmd: "true", Unless: "true", Chdir: d.path("later")}
			},
			first: Run, msg: "does not exist (yet)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newLocalDir(t)
			if tc.setup != nil {
				tc.setup(t, d)
			}
			req := newReq(tc.spec(d), "", nil, nil)
			if tc.msg != "" {
				ch, err := check(t, testCtx(t), d.h, mustProvider("shell"), req)
				if err != nil {
					t.Fatal(err)
				}
				if ch.Action != tc.first || !strings.Contains(ch.Message, strings.TrimPrefix(tc.msg, "skipped: ")) {
					t.Fatalf("got %s %q; want %s with message %q", ch.Action, ch.Message, tc.first, tc.msg)
				}
				if tc.first == None && !strings.HasPrefix(ch.Message, "skipped: ") {
					t.Errorf("message %q; want it to start with \"skipped: \"", ch.Message)
				}
				return
			}
			ch := convergeAgain(t, d.h, mustProvider("shell"), req, func() string { return d.snapshot(t) }, tc.first, tc.again)
			if f := fieldMap(ch); f["cmd"] == "" {
				t.Errorf("fields: got %v; want a cmd field", ch.Fields)
			}
			if tc.verify != nil {
				tc.verify(t, d)
			}
		})
	}
}

func TestShellApplyOutcome(t *testing.T) {
	d := newLocalDir(t)
	evals := map[string]func(map[string]any) any{
		`stdout == "same"`: func(v map[string]any) any { return v["stdout"] == "same" },
		`rc == 2`:          func(v map[string]any) any { return v["rc"] == 2 },
		`rc`:               func(v map[string]any) any { return v["rc"] },
	}
	tests := []struct {
		name      string
		spec      ShellSpec
		wantErr   string // "" = success
		unchanged bool
		rc        int
	}{
		{"success", ShellSpec{Cmd: "echo hi"}, "", false, 0},
		{"failure names cmd, rc and stderr", ShellSpec{Cmd: "echo oops >&2; exit 4"}, "shell echo oops >&2; exit 4: command failed with exit status 4; stderr: oops", false, 4},
		{"changed_when true", ShellSpec{Cmd: "echo same", ChangedWhen: `stdout == "same"`}, "", false, 0},
		{"changed_when false", ShellSpec{Cmd: "echo other", ChangedWhen: `stdout == "same"`}, "", true, 0},
		{"failed_when accepts rc 2", ShellSpec{Cmd: "exit 2", FailedWhen: `rc == 2`}, "failed_when \"rc == 2\" is true", false, 2},
		{"failed_when false passes a non-zero rc", ShellSpec{Cmd: "exit 3", FailedWhen: `rc == 2`}, "", false, 3},
		{"non-boolean expression", ShellSpec{Cmd: "true", ChangedWhen: `rc`}, "want a boolean", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, evals)
			ch, err := check(t, testCtx(t), d.h, mustProvider("shell"), req)
			if err != nil {
				t.Fatal(err)
			}
			out, err := mustProvider("shell").Apply(testCtx(t), d.h, req, ch)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got error %v; want one containing %q", err, tc.wantErr)
			}
			if out == nil || out.Result == nil {
				t.Fatalf("got outcome %v; want one with the result", out)
			}
			if out.Result.ExitCode != tc.rc {
				t.Errorf("rc: got %d; want %d", out.Result.ExitCode, tc.rc)
			}
			if out.Unchanged != tc.unchanged {
				t.Errorf("Unchanged: got %v; want %v", out.Unchanged, tc.unchanged)
			}
		})
	}
}

func TestShellRejectsBadEnv(t *testing.T) {
	_, err := mustProvider("shell").Probe(newReq(&ShellSpec{Cmd: "true", Env: map[string]string{"A;rm -rf /": "x"}}, "", nil, nil))
	if err == nil || !strings.Contains(err.Error(), "not a valid variable name") {
		t.Fatalf("got %v; want an invalid-name error", err)
	}
}

func TestEchoAndAssert(t *testing.T) {
	d := newLocalDir(t)
	snap := func() string { return d.snapshot(t) }
	ch := converge(t, d.h, mustProvider("echo"), newReq(&EchoSpec{Msg: "hello web1"}, "", nil, nil), snap, None)
	if ch.Message != "hello web1" {
		t.Errorf("echo message: got %q; want %q", ch.Message, "hello web1")
	}
	if s, _ := mustProvider("echo").Probe(newReq(&EchoSpec{Msg: "x"}, "", nil, nil)); s != "" {
		t.Errorf("echo probe: got %q; want empty", s)
	}

	evals := map[string]func(map[string]any) any{
		"facts.os == 'linux'": func(map[string]any) any { return true },
		"port > 1024":         func(map[string]any) any { return false },
		"port":                func(map[string]any) any { return 80 },
	}
	converge(t, d.h, mustProvider("assert"), newReq(&AssertSpec{That: []string{"facts.os == 'linux'"}}, "", nil, evals), snap, None)

	tests := []struct {
		name string
		spec AssertSpec
		want string
	}{
		{"false", AssertSpec{That: []string{"facts.os == 'linux'", "port > 1024"}, Msg: "use an unprivileged port"}, "assertion failed: port > 1024: use an unprivileged port"},
		{"false without msg", AssertSpec{That: []string{"port > 1024"}}, "assertion failed: port > 1024"},
		{"not boolean", AssertSpec{That: []string{"port"}}, "want a boolean"},
		{"evaluator error", AssertSpec{That: []string{"nope("}}, "unknown expression"},
		{"empty", AssertSpec{}, "that is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			_, err := check(t, testCtx(t), d.h, mustProvider("assert"), newReq(&s, "", nil, evals))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
			var ae *AssertionError
			if strings.HasPrefix(tc.want, "assertion failed") && !errors.As(err, &ae) {
				t.Errorf("got %T; want *AssertionError", err)
			}
		})
	}
}
