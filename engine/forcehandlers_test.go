package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// goneErr is an apply error that means the host is gone (the engine's
// unreachable errors implement Unreachable).
type goneErr struct{}

func (goneErr) Error() string     { return "host h1: connection lost" }
func (goneErr) Unreachable() bool { return true }

// forcePolicy is a role whose resources notify handlers and then fail:
// ROLEKEY is replaced by a role-level line (force_handlers = ...), MIDDLE
// by the resource that stops the host, POST by the role's post list.
const forcePolicy = `
[[roles]]
name = "r"
ROLEKEY
  [[roles.resources]]
  type = "shell"
  cmd = "echo a >> {{ .root }}/log"
  notify = ["second", "first"]
MIDDLE
  [[roles.resources]]
  type = "shell"
  cmd = "echo after >> {{ .root }}/log"
  notify = ["third"]
POST
  [[roles.handlers]]
  name = "first"
  type = "shell"
  cmd = "echo first >> {{ .root }}/log"
  [[roles.handlers]]
  name = "second"
  type = "shell"
  cmd = "echo second >> {{ .root }}/log"
  [[roles.handlers]]
  name = "third"
  type = "shell"
  cmd = "echo third >> {{ .root }}/log"
  [[roles.handlers]]
  name = "never"
  type = "shell"
  cmd = "echo never >> {{ .root }}/log"
`

// Resources for MIDDLE and POST.
const (
	failShell = `
  [[roles.resources]]
  type = "shell"
  cmd = "echo fail >> {{ .root }}/log; exit 3"`
	okShell = `
  [[roles.resources]]
  type = "shell"
  cmd = "echo ok >> {{ .root }}/log"`
	// failPost notifies "third" (which ran already, after resources) from
	// post, then fails.
	failPost = `
  [[roles.post]]
  type = "shell"
  cmd = "echo post >> {{ .root }}/log"
  notify = ["third"]
  [[roles.post]]
  type = "shell"
  cmd = "echo postfail >> {{ .root }}/log; exit 5"`
	fakeFail  = "\n  [[roles.resources]]\n  type = \"fake\"\n  id = \"bad\""
	fakeGone  = "\n  [[roles.resources]]\n  type = \"fake\"\n  id = \"gone\""
	fakeStop  = "\n  [[roles.resources]]\n  type = \"fake\"\n  id = \"stop\""
	failFirst = `
  [[roles.handlers]]
  name = "first"
  type = "shell"
  cmd = "echo first-fails >> {{ .root }}/log; exit 4"`
)

// TestForceHandlers runs a role whose resources notify handlers before
// one of them stops the host, with and without --force-handlers
// (Options.ForceHandlers) and the role's force_handlers, and checks which
// handlers ran (the log the shell commands write), in which order, and
// that the host still failed with the error of the resource that failed.
func TestForceHandlers(t *testing.T) {
	tests := []struct {
		name    string
		roleKey string // a role-level line
		middle  string
		post    string
		// handlers replaces the handler "first" (failFirst) when set.
		handlers string
		force    bool
		check    bool
		wantLog  string
		// wantStats are the host's failed, changed and unreachable counts.
		wantFailed, wantChanged, wantUnreachable int
		// wantNotice is a part of the notice saying handlers are forced
		// ("": no such notice).
		wantNotice string
		// wantErr is a part of the host's recorded error.
		wantErr string
	}{
		{
			name: "without force a failure skips the notified handlers", middle: failShell,
			wantLog: "a\nfail\n", wantFailed: 1, wantChanged: 1, wantErr: "exit status 3",
		},
		{
			name: "--force-handlers runs the handlers notified before the failure, in declaration order", middle: failShell, force: true,
			wantLog: "a\nfail\nfirst\nsecond\n", wantFailed: 1, wantChanged: 3,
			wantNotice: `h1: failed in role r; running the handlers notified before the failure (force_handlers): "first", "second"`, wantErr: "exit status 3",
		},
		{
			name: "force_handlers = true on the role, no flag", roleKey: "force_handlers = true", middle: failShell,
			wantLog: "a\nfail\nfirst\nsecond\n", wantFailed: 1, wantChanged: 3, wantNotice: "running the handlers", wantErr: "exit status 3",
		},
		{
			name: "force_handlers = false on the role beats --force-handlers", roleKey: "force_handlers = false", middle: failShell, force: true,
			wantLog: "a\nfail\n", wantFailed: 1, wantChanged: 1, wantErr: "exit status 3",
		},
		{
			name: "no failure: handlers run once, as without the flag", middle: okShell, force: true,
			wantLog: "a\nok\nafter\nfirst\nsecond\nthird\n", wantChanged: 6,
		},
		{
			name: "a failure in post with nothing notified since the flush runs no handler again", middle: okShell, post: strings.Replace(failPost, "\n  notify = [\"third\"]", "", 1), force: true,
			wantLog: "a\nok\nafter\nfirst\nsecond\nthird\npost\npostfail\n", wantFailed: 1, wantChanged: 7,
			wantErr: "exit status 5",
		},
		{
			name: "a failure in post forces the handlers post notified, even one that ran after resources", middle: okShell, post: failPost, force: true,
			wantLog: "a\nok\nafter\nfirst\nsecond\nthird\npost\npostfail\nthird\n", wantFailed: 1, wantChanged: 8,
			wantNotice: `running the handlers notified before the failure (force_handlers): "third"`, wantErr: "exit status 5",
		},
		{
			name: "a forced handler that fails stops the ones after it; the host keeps the first error", middle: failShell, handlers: failFirst, force: true,
			wantLog: "a\nfail\nfirst-fails\n", wantFailed: 2, wantChanged: 1, wantNotice: "running the handlers", wantErr: "exit status 3",
		},
		{
			name: "a handler failing in the normal flush is not followed by forced handlers", middle: okShell, handlers: failFirst, force: true,
			wantLog: "a\nok\nafter\nfirst-fails\n", wantFailed: 1, wantChanged: 3, wantErr: "exit status 4",
		},
		{
			name: "an unreachable host runs no handler", middle: fakeGone, force: true,
			wantLog: "a\n", wantChanged: 1, wantUnreachable: 1, wantErr: "connection lost",
		},
		{
			name: "an interrupted run runs no handler", middle: fakeStop, force: true,
			wantLog: "a\n", wantFailed: 1, wantChanged: 1, wantErr: "interrupted",
		},
		{
			name: "check shows the forced handlers and runs nothing", middle: fakeFail, force: true, check: true,
			wantLog: "", wantFailed: 1, wantChanged: 3, wantNotice: `"first", "second"`, wantErr: "check refused",
		},
		{
			name: "check without force shows no handler", middle: fakeFail, check: true,
			wantLog: "", wantFailed: 1, wantChanged: 1, wantErr: "check refused",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h.ctx = ctx
			h.opts = func(o *engine.Options) { o.ForceHandlers = tc.force }
			h.fake = &fakeProvider{
				check: func(id string) (*providers.Change, error) {
					if id == "bad" {
						return nil, errors.New("check refused")
					}
					return &providers.Change{Action: providers.Update, Fields: []providers.Field{{Name: "x", Before: "1", After: "2"}}}, nil
				},
				apply: func(id string) error {
					switch id {
					case "gone":
						return goneErr{}
					case "stop":
						cancel()
						return errors.New("stopped")
					}
					return nil
				},
			}
			src := strings.NewReplacer("ROLEKEY", tc.roleKey, "MIDDLE", tc.middle, "POST", tc.post).Replace(forcePolicy)
			if tc.handlers != "" {
				src = strings.Replace(src, "  [[roles.handlers]]\n  name = \"first\"\n  type = \"shell\"\n  cmd = \"echo first >> {{ .root }}/log\"", strings.TrimPrefix(tc.handlers, "\n"), 1)
			}
			if tc.check {
				// In check the shell resources would run nothing: the
				// resource notifying the handlers is a fake that would
				// change.
				src = strings.Replace(src, "  type = \"shell\"\n  cmd = \"echo a >> {{ .root }}/log\"", "  type = \"fake\"\n  id = \"ok\"", 1)
			}
			sum, rec := h.run(src, tc.check, nil)
			b, err := os.ReadFile(filepath.Join(h.dir, "log"))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if got := string(b); got != tc.wantLog {
				t.Errorf("log: got %q; want %q; events %+v", got, tc.wantLog, rec.events)
			}
			st := sum.Hosts["h1"]
			if st.Failed != tc.wantFailed || st.Changed != tc.wantChanged || st.Unreachable != tc.wantUnreachable {
				t.Errorf("stats: got failed=%d changed=%d unreachable=%d; want failed=%d changed=%d unreachable=%d; events %+v",
					st.Failed, st.Changed, st.Unreachable, tc.wantFailed, tc.wantChanged, tc.wantUnreachable, rec.events)
			}
			if got, want := sum.Failed(), tc.wantFailed+tc.wantUnreachable > 0; got != want {
				t.Errorf("summary failed: got %v; want %v (a forced handler never turns a failed host into a success)", got, want)
			}
			if !strings.Contains(st.Error, tc.wantErr) {
				t.Errorf("host error: got %q; want it to contain %q", st.Error, tc.wantErr)
			}
			var notices []string
			for _, e := range rec.events {
				if e.Type == "notice" {
					notices = append(notices, e.Message)
				}
			}
			switch {
			case tc.wantNotice == "" && len(notices) > 0:
				t.Errorf("notices: got %q; want none", notices)
			case tc.wantNotice != "" && (len(notices) != 1 || !strings.Contains(notices[0], tc.wantNotice)):
				t.Errorf("notices: got %q; want one containing %q", notices, tc.wantNotice)
			}
			if tc.wantNotice == "" {
				return
			}
			// The forced handlers come after the failure, and each is a
			// handler event (in check: would run).
			evs := rec.resources("h1")
			failedAt, handlers := -1, 0
			for i, e := range evs {
				if e.Status == engine.StatusFailed && failedAt < 0 {
					failedAt = i
				}
				if e.Type == "handler" && failedAt >= 0 {
					handlers++
					if tc.check && e.Status != engine.StatusChanged {
						t.Errorf("check: handler %s: got status %s; want changed (would run)", e.Resource, e.Status)
					}
				}
			}
			if failedAt < 0 || handlers == 0 {
				t.Errorf("events: got failure at %d and %d handler event(s) after it; want handlers after the failure: %+v", failedAt, handlers, evs)
			}
		})
	}
}

// TestForceHandlersLaterRole checks that a host failing in a later role
// does not run the handlers of an earlier role again: those were flushed
// when that role ended.
func TestForceHandlersLaterRole(t *testing.T) {
	h := newHarness(t)
	h.opts = func(o *engine.Options) { o.ForceHandlers = true }
	src := `
[[roles]]
name = "one"
  [[roles.resources]]
  type = "shell"
  cmd = "echo a >> {{ .root }}/log"
  notify = ["h"]
  [[roles.handlers]]
  name = "h"
  type = "shell"
  cmd = "echo h >> {{ .root }}/log"
[[roles]]
name = "two"
  [[roles.resources]]
  type = "shell"
  cmd = "echo fail >> {{ .root }}/log; exit 3"
  [[roles.handlers]]
  name = "h"
  type = "shell"
  cmd = "echo two-h >> {{ .root }}/log"
`
	sum, rec := h.run(src, false, nil)
	b, _ := os.ReadFile(filepath.Join(h.dir, "log"))
	if got, want := string(b), "a\nh\nfail\n"; got != want {
		t.Errorf("log: got %q; want %q; events %+v", got, want, rec.events)
	}
	if !sum.Failed() || sum.Hosts["h1"].Failed != 1 {
		t.Errorf("got %+v; want h1 failed once", sum.Hosts["h1"])
	}
}

// TestForceHandlersKeyDecoding checks the role key's strict decoding: a
// value that is not a boolean is an error naming file:line and the key.
func TestForceHandlersKeyDecoding(t *testing.T) {
	h := newHarness(t)
	p := filepath.Join(h.pdir, "site.toml")
	if err := os.WriteFile(p, []byte("[[roles]]\nname = \"r\"\nforce_handlers = \"yes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := policy.Load(p, h.reg)
	if err == nil || !strings.Contains(err.Error(), "site.toml:3: roles[0].force_handlers:") {
		t.Errorf("got %v; want an error at site.toml:3 naming roles[0].force_handlers", err)
	}
	if err := os.WriteFile(p, []byte("[[roles]]\nname = \"r\"\nforce_handler = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = policy.Load(p, h.reg)
	if err == nil || !strings.Contains(err.Error(), `did you mean "force_handlers"`) {
		t.Errorf("got %v; want an unknown key error suggesting force_handlers", err)
	}
}
