package providers

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
)

// serviceDocs is the service entry of typeDocs: the Behaviour section and
// the examples of docs/resources/service.md.
func serviceDocs() struct{ notes, toml, yaml string } {
	return struct{ notes, toml, yaml string }{
		notes: "- systemd: `systemctl is-active`, `is-enabled`, `start`/`stop`/`restart`/`reload`, `enable`/`disable`, `mask`/`unmask`, `daemon-reload`. A unit without a suffix is `NAME.service`.\n" +
			"- sysv: `service NAME status` (exit status 0 = running; `/etc/init.d/NAME` when there is no `service` command) and `service NAME start|stop|restart|reload`; enabled means `/etc/rc[2-5].d/S??NAME` links exist (managed with `update-rc.d NAME defaults`/`enable`/`disable`), or `chkconfig NAME` on hosts with chkconfig (`chkconfig NAME on|off`).\n" +
			"- `restarted` and `reloaded` always report `run`: they are meant for handlers.\n" +
			"- A service that does not exist yet (installed by an earlier resource) is reported with a message at check time; apply fails if it still does not exist.\n" +
			"- `daemon_reload = true` asks systemd, in the same probe, whether the unit's files changed since it loaded them (`systemctl show -p NeedDaemonReload`), and whether a unit file exists on disk (/etc, /run, /usr/local/lib, /usr/lib, /lib `systemd/system`) for a unit systemd reports as not found (a unit file created since the last reload). Only then does the change include `daemon_reload: unit files changed on disk -> reloaded`, and apply runs `systemctl daemon-reload` **first**, before unmask, start/stop/restart/reload, enable/disable and mask. Nothing is reloaded \"just in case\": when systemd already runs the files on disk, a `daemon_reload` key costs nothing.\n" +
			"- **Once per host per run**, without any bookkeeping: after a resource changes a host, opsmop reads the probes of the following resources again, so a second service with `daemon_reload = true` on that host sees `NeedDaemonReload=no` and does not reload again. In `check` nothing changes, so every service whose unit files changed says it would reload.\n" +
			"- The Ansible pattern (a `file` or `template` writes the unit file and notifies a handler with `daemon_reload = true` and `state = \"restarted\"`) works as expected: the rewritten file makes systemd report NeedDaemonReload=yes, so the handler reloads, then restarts. If the handler runs after another service already reloaded in the same run, it only restarts (the reload it needed already happened). Caveat: in `check`, a handler cannot foresee the reload a notifying file would cause (the file is not written), so it shows the restart only.\n" +
			"  ```toml\n  [[roles.resources]]\n  type = \"file\"\n  path = \"/etc/systemd/system/app.service\"\n  src = \"files/app.service\"\n  notify = [\"restart app\"]\n\n  [[roles.resources]]\n  type = \"service\"\n  service = \"app\"\n  state = \"started\"\n  enabled = true\n  daemon_reload = true\n\n  [[roles.handlers]]\n  name = \"restart app\"\n  type = \"service\"\n  service = \"app\"\n  state = \"restarted\"\n  daemon_reload = true\n  ```\n\n" +
			"  On the first run the file is created, the `service` resource reloads (the new unit file), starts and enables `app`; the handler then only restarts it. On a later run that changes the file, the `service` resource reloads (it is already running, so that is all it does) and the handler restarts.\n" +
			"- `masked = true` runs `systemctl mask` (the unit's name in /etc/systemd/system becomes a link to /dev/null; `is-enabled` says `masked`); `masked = false` runs `systemctl unmask` first, before start and enable. As with Ansible's systemd module, **masking does not stop a running unit**: it only keeps it from being started again. Add `state = \"stopped\"` to stop it too (apply stops, then masks).\n" +
			"- After `unmask`, the unit's enablement is whatever it was before it was masked (its `.wants` links survive masking); so with `masked = false` and `enabled` set, apply always runs `enable`/`disable` after unmasking (the change shows `enabled: masked -> true|false`).\n" +
			"- A unit that is masked on the host while the resource does not manage `masked` cannot be started or enabled: check fails, naming the unit and saying to set `masked = false`, rather than letting `systemctl` fail at apply.\n" +
			"- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `service` that is not a service name (empty, starting with `-`, or holding `/` or a space); `masked = true` with `state` `started`, `restarted` or `reloaded`, or with `enabled = true` (a masked unit can be neither); `daemon_reload` or `masked` with `provider = \"sysv\"` (init scripts are read on every start, so there is nothing to reload, and sysv has no masking). On a host whose init system is not systemd (without `provider`), the check of such a resource fails saying so. A value written as a template (`{{ ... }}`) is checked once rendered for each host.\n" +
			"- Tests: lab hosts have no systemd as pid 1, so the systemd side is tested against a `systemctl` stand-in (a POSIX sh script, providers/testdata/systemctl-standin.sh) installed in each lab host. It emulates unit files under /etc/systemd/system and /usr/lib/systemd/system, `LoadState` (loaded, not-found, masked), enablement as `multi-user.target.wants` links and masks as links to /dev/null (as systemd makes them), static units (no `WantedBy=`), the active state, refusals (starting or enabling a masked unit, masking a unit whose file is in /etc, reloading a stopped unit) and `NeedDaemonReload` as systemd computes it (the unit file's inode or mtime differ from the last `daemon-reload`). It logs every call, so the tests assert which commands ran, in which order and how often (check runs no mutating verb; `daemon-reload` runs once per host per run). The sysv side runs real init scripts.",
		toml: `[[roles.resources]]
type = "service"
service = "nginx"
state = "started"
enabled = true

[[roles.resources]]
type = "service"
service = "telnet.socket"
state = "stopped"
masked = true

[[roles.handlers]]
name = "reload nginx"
type = "service"
service = "nginx"
state = "reloaded"
daemon_reload = true`,
		yaml: `- type: service
  service: nginx
  state: started
  enabled: true
- type: service
  service: telnet.socket
  state: stopped
  masked: true`,
	}
}

// TestServiceSystemdPlan drives the systemd keys (daemon_reload, masked)
// through the fake host from canned probe results and asserts the change
// and the exact apply script, in order.
func TestServiceSystemdPlan(t *testing.T) {
	tests := []struct {
		name   string
		spec   ServiceSpec
		out    string
		action Action
		fields map[string]string
		apply  string // "" when no change
	}{
		{
			name:   "reload needed before start and enable",
			spec:   ServiceSpec{Service: "app", State: "started", Enabled: ptr(true), DaemonReload: true},
			out:    "load=loaded\nactive=inactive\nenabled=disabled\nreload=yes\nunitfile=1\n",
			action: Update,
			fields: map[string]string{"daemon_reload": "unit files changed on disk -> reloaded", "state": "stopped -> running", "enabled": "false -> true"},
			apply:  "set -e\nsystemctl daemon-reload\nsystemctl start app\nsystemctl enable app\n",
		},
		{
			name:   "reload not needed is no change",
			spec:   ServiceSpec{Service: "app", State: "started", DaemonReload: true},
			out:    "load=loaded\nactive=active\nenabled=enabled\nreload=no\nunitfile=1\n",
			action: None,
		},
		{
			name:   "reload alone is an update",
			spec:   ServiceSpec{Service: "app", DaemonReload: true},
			out:    "load=loaded\nactive=active\nenabled=enabled\nreload=yes\nunitfile=1\n",
			action: Update,
			fields: map[string]string{"daemon_reload": "unit files changed on disk -> reloaded"},
			apply:  "set -e\nsystemctl daemon-reload\n",
		},
		{
			name:   "unit file on disk not loaded yet",
			spec:   ServiceSpec{Service: "app", State: "started", DaemonReload: true},
			out:    "load=not-found\nactive=inactive\nenabled=\nreload=no\nunitfile=1\n",
			action: Update,
			fields: map[string]string{"daemon_reload": "unit file not loaded yet -> reloaded", "state": "stopped -> running"},
			apply:  "set -e\nsystemctl daemon-reload\nsystemctl start app\n",
		},
		{
			name:   "restart handler reloads first",
			spec:   ServiceSpec{Service: "app", State: "restarted", DaemonReload: true},
			out:    "load=loaded\nactive=active\nenabled=enabled\nreload=yes\nunitfile=1\n",
			action: Run,
			apply:  "set -e\nsystemctl daemon-reload\nsystemctl restart app\n",
		},
		{
			name:   "mask a running unit leaves it running",
			spec:   ServiceSpec{Service: "telnet.socket", Masked: ptr(true)},
			out:    "load=loaded\nactive=active\nenabled=enabled\n",
			action: Update,
			fields: map[string]string{"masked": "false -> true"},
			apply:  "set -e\nsystemctl mask telnet.socket\n",
		},
		{
			name:   "stop then mask",
			spec:   ServiceSpec{Service: "app", State: "stopped", Masked: ptr(true), Enabled: ptr(false)},
			out:    "load=loaded\nactive=active\nenabled=enabled\n",
			action: Update,
			fields: map[string]string{"masked": "false -> true", "state": "running -> stopped", "enabled": "true -> false"},
			apply:  "set -e\nsystemctl stop app\nsystemctl disable app\nsystemctl mask app\n",
		},
		{
			name:   "masked and stopped is no change",
			spec:   ServiceSpec{Service: "app", State: "stopped", Masked: ptr(true), Enabled: ptr(false)},
			out:    "load=masked\nactive=inactive\nenabled=masked\n",
			action: None,
		},
		{
			name:   "unmask first, then start and enable",
			spec:   ServiceSpec{Service: "app", State: "started", Masked: ptr(false), Enabled: ptr(true)},
			out:    "load=masked\nactive=inactive\nenabled=masked\n",
			action: Update,
			fields: map[string]string{"masked": "true -> false", "state": "stopped -> running", "enabled": "masked -> true"},
			apply:  "set -e\nsystemctl unmask app\nsystemctl start app\nsystemctl enable app\n",
		},
		{
			name:   "unmask with enabled false disables what masking hid",
			spec:   ServiceSpec{Service: "app", Masked: ptr(false), Enabled: ptr(false)},
			out:    "load=masked\nactive=inactive\nenabled=masked\n",
			action: Update,
			fields: map[string]string{"masked": "true -> false", "enabled": "masked -> false"},
			apply:  "set -e\nsystemctl unmask app\nsystemctl disable app\n",
		},
		{
			name:   "masked unmanaged and stopped wanted",
			spec:   ServiceSpec{Service: "app", State: "stopped"},
			out:    "load=masked\nactive=active\nenabled=masked\n",
			action: Update,
			fields: map[string]string{"state": "running -> stopped"},
			apply:  "set -e\nsystemctl stop app\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, nil)
			req.Facts["init_system"] = "systemd"
			script, err := mustProvider("service").Probe(req)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Contains(script, "NeedDaemonReload"), s.DaemonReload; got != want {
				t.Errorf("probe reads NeedDaemonReload: got %v; want %v", got, want)
			}
			ch, err := mustProvider("service").Check(req, connection.Result{Stdout: []byte(tc.out)})
			if err != nil {
				t.Fatal(err)
			}
			if ch.Action != tc.action {
				t.Fatalf("action: got %s %v; want %s", ch.Action, ch.Fields, tc.action)
			}
			for k, v := range tc.fields {
				if got := fieldMap(ch)[k]; got != v {
					t.Errorf("field %s: got %q; want %q", k, got, v)
				}
			}
			if tc.fields != nil && len(ch.Fields) != len(tc.fields) {
				t.Errorf("fields: got %v; want %v", fieldMap(ch), tc.fields)
			}
			if !ch.Changed() {
				return
			}
			f := &fakeHost{}
			if _, err := mustProvider("service").Apply(testCtx(t), f, req, ch); err != nil {
				t.Fatal(err)
			}
			if len(f.scripts) != 1 || f.scripts[0] != tc.apply {
				t.Errorf("apply: got %q; want exactly [%q]", f.scripts, tc.apply)
			}
		})
	}
}

// TestServiceSystemdErrors asserts the validation errors (with the key
// they belong to, which the policy layer turns into file:line) and the
// check-time errors of the systemd keys.
func TestServiceSystemdErrors(t *testing.T) {
	valid := []struct {
		name string
		spec ServiceSpec
		key  string
		msg  string
	}{
		{"masked with started", ServiceSpec{Service: "a", State: "started", Masked: ptr(true)}, "masked", `masked = true with state = "started": a masked unit cannot be started`},
		{"masked with restarted", ServiceSpec{Service: "a", State: "restarted", Masked: ptr(true)}, "masked", `masked = true with state = "restarted"`},
		{"masked with reloaded", ServiceSpec{Service: "a", State: "reloaded", Masked: ptr(true)}, "masked", `masked = true with state = "reloaded"`},
		{"masked with enabled", ServiceSpec{Service: "a", Enabled: ptr(true), Masked: ptr(true)}, "masked", "masked = true with enabled = true: a masked unit cannot be enabled"},
		{"sysv daemon_reload", ServiceSpec{Service: "a", Provider: "sysv", DaemonReload: true}, "daemon_reload", "daemon_reload needs provider systemd: sysv has no unit files to reload"},
		{"sysv masked", ServiceSpec{Service: "a", Provider: "sysv", Masked: ptr(false)}, "masked", "masked needs provider systemd: sysv has no masking"},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			var se *SpecError
			if !errors.As(err, &se) || len(se.Problems) != 1 {
				t.Fatalf("got %v; want one problem", err)
			}
			if got := se.Problems[0]; got.Key != tc.key || !strings.Contains(got.Msg, tc.msg) {
				t.Errorf("got key %q msg %q; want key %q and a message containing %q", got.Key, got.Msg, tc.key, tc.msg)
			}
		})
	}
	for _, ok := range []ServiceSpec{
		{Service: "a", State: "stopped", Enabled: ptr(false), Masked: ptr(true)},
		{Service: "a", State: "started", Enabled: ptr(true), Masked: ptr(false), DaemonReload: true, Provider: "systemd"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v): got %v; want nil", ok, err)
		}
	}

	checks := []struct {
		name string
		init string
		spec ServiceSpec
		out  string
		msg  string
	}{
		{"masked unit started", "systemd", ServiceSpec{Service: "app", State: "started"}, "load=masked\nactive=inactive\nenabled=masked\n", `unit app is masked and cannot be started (state = "started"); set masked = false to unmask it`},
		{"masked unit enabled", "systemd", ServiceSpec{Service: "app", Enabled: ptr(true)}, "load=masked\nactive=inactive\nenabled=masked\n", "unit app is masked and cannot be enabled; set masked = false"},
		{"sysv host daemon_reload", "sysv", ServiceSpec{Service: "app", DaemonReload: true}, "exists=1\nstatus=0\nentool=update-rc.d\nenabled=1\n", "daemon_reload and masked need systemd, and the host's init system is not systemd"},
		{"sysv host masked", "", ServiceSpec{Service: "app", Masked: ptr(true)}, "exists=1\nstatus=0\nentool=update-rc.d\nenabled=1\n", "daemon_reload and masked need systemd"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, nil)
			req.Facts["init_system"] = tc.init
			_, err := mustProvider("service").Check(req, connection.Result{Stdout: []byte(tc.out)})
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v; want an error containing %q", err, tc.msg)
			}
		})
	}
}

// standinLog is where the systemctl stand-in logs its invocations.
const standinLog = "/var/log/systemctl-standin.log"

// installSystemctlStandin installs providers/testdata/systemctl-standin.sh
// as /usr/bin/systemctl on a lab host (its /usr is a private overlay) and
// empties its log.
func installSystemctlStandin(t *testing.T, h *labHost) {
	t.Helper()
	b, err := os.ReadFile("testdata/systemctl-standin.sh")
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(testCtx(t), "cat > /usr/bin/systemctl && chmod 755 /usr/bin/systemctl && : > "+standinLog, bytes.NewReader(b))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("install the systemctl stand-in: %v exit %d: %s", err, res.ExitCode, res.Stderr)
	}
}

// mutatingCalls is the stand-in's log without the read-only verbs.
const mutatingCalls = "grep -Ev '^(show|is-active|is-enabled) ' " + standinLog + " || true"

// TestServiceSystemdOnLabHost runs the service provider's systemd side
// against the systemctl stand-in on a lab host: check never changes the
// host (no mutating systemctl call, no file changed), apply converges and
// a second check is clean, daemon-reload runs first and only when the unit
// file changed, masking and unmasking, enabled drift repaired, a masked
// unit refused, a missing unit an apply error.
func TestServiceSystemdOnLabHost(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 29, Hosts: []lab.HostSpec{{Name: "sd1"}}})
	h := &labHost{pid: l.Host("sd1").PID}
	installSystemctlStandin(t, h)
	h.exec(t, `set -e
mkdir -p /etc/systemd/system /usr/lib/systemd/system
printf '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' > /etc/systemd/system/opsmop-a.service
printf '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' > /usr/lib/systemd/system/opsmop-m.service
systemctl daemon-reload
: > `+standinLog)
	facts := map[string]any{"init_system": "systemd"}
	req := func(spec *ServiceSpec) *Request {
		r := newReq(spec, "", nil, nil)
		r.Facts = facts
		return r
	}
	// The host's systemd state: unit files, links and the stand-in's
	// state, with mtimes, and every mutating call so far.
	snap := h.snap(t, "find /etc/systemd /usr/lib/systemd/system /var/lib/systemctl-standin -printf '%p %y %l %i %T@\\n' | sort; "+mutatingCalls)
	calls := func() string {
		t.Helper()
		out := h.exec(t, mutatingCalls+"; : > "+standinLog)
		return strings.ReplaceAll(strings.TrimSpace(out), "\n", "; ")
	}
	p := mustProvider("service")

	t.Run("daemon_reload start enable", func(t *testing.T) {
		h.exec(t, "echo '# changed' >> /etc/systemd/system/opsmop-a.service")
		calls()
		ch := converge(t, h, p, req(&ServiceSpec{Service: "opsmop-a", State: "started", Enabled: ptr(true), DaemonReload: true}), snap, Update)
		want := map[string]string{"daemon_reload": "unit files changed on disk -> reloaded", "state": "stopped -> running", "enabled": "false -> true"}
		for k, v := range want {
			if got := fieldMap(ch)[k]; got != v {
				t.Errorf("field %s: got %q; want %q", k, got, v)
			}
		}
		if got, want := calls(), "daemon-reload; start opsmop-a; enable opsmop-a"; got != want {
			t.Errorf("systemctl calls: got %q; want %q", got, want)
		}
		if got := h.exec(t, "readlink /etc/systemd/system/multi-user.target.wants/opsmop-a.service"); got != "/etc/systemd/system/opsmop-a.service\n" {
			t.Errorf("wants link: got %q", got)
		}
	})

	t.Run("no reload when unchanged", func(t *testing.T) {
		converge(t, h, p, req(&ServiceSpec{Service: "opsmop-a", State: "started", Enabled: ptr(true), DaemonReload: true}), snap, None)
		convergeAgain(t, h, p, req(&ServiceSpec{Service: "opsmop-a", State: "restarted", DaemonReload: true}), snap, Run, Run)
		if got, want := calls(), "restart opsmop-a"; got != want {
			t.Errorf("systemctl calls: got %q; want %q (no daemon-reload)", got, want)
		}
	})

	t.Run("rewritten unit file reloads in the restart handler", func(t *testing.T) {
		// Same contents, new file (as a file resource writes it): systemd
		// goes by the file, not its contents.
		h.exec(t, "cp /etc/systemd/system/opsmop-a.service /tmp/u && mv /tmp/u /etc/systemd/system/opsmop-a.service")
		calls()
		convergeAgain(t, h, p, req(&ServiceSpec{Service: "opsmop-a", State: "restarted", DaemonReload: true}), snap, Run, Run)
		if got, want := calls(), "daemon-reload; restart opsmop-a"; got != want {
			t.Errorf("systemctl calls: got %q; want %q (the reload first)", got, want)
		}
	})

	t.Run("enabled drift", func(t *testing.T) {
		h.exec(t, "systemctl disable opsmop-a")
		calls()
		ch := converge(t, h, p, req(&ServiceSpec{Service: "opsmop-a", State: "started", Enabled: ptr(true), DaemonReload: true}), snap, Update)
		if got := fieldMap(ch); len(got) != 1 || got["enabled"] != "false -> true" {
			t.Errorf("fields: got %v; want only enabled false -> true", got)
		}
		if got, want := calls(), "enable opsmop-a"; got != want {
			t.Errorf("systemctl calls: got %q; want %q", got, want)
		}
	})

	t.Run("mask a running unit, stop it, unmask", func(t *testing.T) {
		h.exec(t, "systemctl enable opsmop-m && systemctl start opsmop-m")
		calls()
		ch := converge(t, h, p, req(&ServiceSpec{Service: "opsmop-m", Masked: ptr(true)}), snap, Update)
		if got := fieldMap(ch); len(got) != 1 || got["masked"] != "false -> true" {
			t.Errorf("fields: got %v; want only masked false -> true", got)
		}
		if got := h.exec(t, "readlink /etc/systemd/system/opsmop-m.service; systemctl is-active opsmop-m; systemctl is-enabled opsmop-m || true"); got != "/dev/null\nactive\nmasked\n" {
			t.Errorf("after mask: got %q; want a /dev/null link, still active, is-enabled masked", got)
		}
		converge(t, h, p, req(&ServiceSpec{Service: "opsmop-m", State: "stopped", Masked: ptr(true), Enabled: ptr(false)}), snap, Update)
		if got, want := calls(), "mask opsmop-m; stop opsmop-m"; got != want {
			t.Errorf("systemctl calls: got %q; want %q", got, want)
		}

		// Masked on the host, masked not managed: starting is refused at check.
		_, err := check(t, testCtx(t), h, p, req(&ServiceSpec{Service: "opsmop-m", State: "started"}))
		if err == nil || !strings.Contains(err.Error(), "unit opsmop-m is masked and cannot be started") {
			t.Errorf("start a masked unit: got %v; want a check error saying to unmask", err)
		}

		// Unmask: the wants link masking hid is still there, so enabled =
		// false must disable it.
		ch = converge(t, h, p, req(&ServiceSpec{Service: "opsmop-m", Masked: ptr(false), Enabled: ptr(false)}), snap, Update)
		if got := fieldMap(ch); got["masked"] != "true -> false" || got["enabled"] != "masked -> false" {
			t.Errorf("fields: got %v", got)
		}
		if got, want := calls(), "unmask opsmop-m; disable opsmop-m"; got != want {
			t.Errorf("systemctl calls: got %q; want %q", got, want)
		}
		converge(t, h, p, req(&ServiceSpec{Service: "opsmop-m", State: "started", Masked: ptr(false), Enabled: ptr(true)}), snap, Update)
		if got, want := calls(), "start opsmop-m; enable opsmop-m"; got != want {
			t.Errorf("systemctl calls: got %q; want %q", got, want)
		}
	})

	t.Run("missing unit", func(t *testing.T) {
		ctx := testCtx(t)
		r := req(&ServiceSpec{Service: "opsmop-none", State: "started", DaemonReload: true})
		ch, err := check(t, ctx, h, p, r)
		if err != nil || ch.Action != Update || !strings.Contains(ch.Message, "not found (yet)") {
			t.Fatalf("check: got %v %+v; want an update with a not-found message", err, ch)
		}
		_, err = p.Apply(ctx, h, r, ch)
		if err == nil || !strings.Contains(err.Error(), "Unit opsmop-none.service not found") {
			t.Errorf("apply: got %v; want systemctl's not-found error", err)
		}
		calls()
	})

	t.Run("bad input", func(t *testing.T) {
		_, err := check(t, testCtx(t), h, p, req(&ServiceSpec{Service: "opsmop-a", State: "started", Masked: ptr(true)}))
		if err == nil || !strings.Contains(err.Error(), "a masked unit cannot be started") {
			t.Errorf("got %v; want the validation error", err)
		}
		if got := calls(); got != "" {
			t.Errorf("systemctl calls: got %q; want none", got)
		}
	})
}
