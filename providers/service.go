package providers

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// ServiceSpec is the `service` resource: a system service's running state
// and whether it starts at boot.
type ServiceSpec struct {
	Service  string `opsmop:"service" required:"true" doc:"the service name (systemd unit name without .service, or /etc/init.d script name)"`
	State    string `opsmop:"state" enum:"started|stopped|restarted|reloaded" doc:"started/stopped: running or not; restarted/reloaded: always restart/reload (typical for handlers; reloading a stopped service starts it); unset: running state not managed"`
	Enabled  *bool  `opsmop:"enabled" doc:"start at boot (true) or not (false); unset: not managed. systemd units that cannot be enabled or disabled (static, indirect, generated) count as satisfying either"`
	Provider string `opsmop:"provider" enum:"systemd|sysv" doc:"the init system; default: systemd when the host's init_system fact is systemd, else sysv (service/init.d scripts, with update-rc.d or chkconfig for enabled)"`
	// DaemonReload runs `systemctl daemon-reload` before anything else
	// when systemd says the unit's files changed since it loaded them.
	DaemonReload bool `opsmop:"daemon_reload" doc:"systemd only: run systemctl daemon-reload first when systemd reports the unit's files changed on disk (NeedDaemonReload=yes, or a unit file present for a unit systemd has not loaded); it then happens once per host however many services ask for it"`
	// Masked masks (true) or unmasks (false) the unit; nil leaves it.
	Masked *bool `opsmop:"masked" doc:"systemd only: mask the unit (true: systemctl mask, it can no longer be started, by anything) or unmask it (false); unset: not managed. Masking does not stop a running unit: add state = \"stopped\""`
}

// Validate checks the rules of a service that need no host (see
// Validator): service is a service name; state and provider are known
// values.
func (s *ServiceSpec) Validate() error {
	var p problems
	if !templated(s.Service) && (s.Service == "" || s.Service[0] == '-' || strings.ContainsAny(s.Service, "/ \t\n\x00")) {
		p.add("service", "service %q is not a service name", s.Service)
	}
	p.enum("state", s.State, "started", "stopped", "restarted", "reloaded")
	p.enum("provider", s.Provider, "systemd", "sysv")
	if s.Provider == "sysv" {
		if s.DaemonReload {
			p.add("daemon_reload", "daemon_reload needs provider systemd: sysv has no unit files to reload (init scripts are read on every run)")
		}
		if s.Masked != nil {
			p.add("masked", "masked needs provider systemd: sysv has no masking (use enabled = false, or remove the init script)")
		}
	}
	if s.Masked != nil && *s.Masked {
		switch s.State {
		case "started", "restarted", "reloaded":
			p.add("masked", "masked = true with state = %q: a masked unit cannot be started; use state = \"stopped\" or leave state unset", s.State)
		}
		if s.Enabled != nil && *s.Enabled {
			p.add("masked", "masked = true with enabled = true: a masked unit cannot be enabled; use enabled = false or leave enabled unset")
		}
	}
	return p.err()
}

// serviceProvider implements `service`.
type serviceProvider struct{}

// servicePlan is what Apply does for a service.
type servicePlan struct {
	Name    string
	Init    string // systemd | sysv
	Action  string // start | stop | restart | reload | ""
	Enable  *bool
	EnTool  string // sysv: update-rc.d | chkconfig
	Missing bool
	Reload  bool  // systemd: daemon-reload first
	Mask    *bool // systemd: mask (true, last) or unmask (false, first)
}

// labels names the instance by its service name; the errors of Apply
// name it themselves.
func (serviceProvider) labels(s *ServiceSpec) errLabels {
	l := "service " + s.Service
	return errLabels{Probe: l, Check: l}
}

// Probe reports whether the service exists, runs, and is enabled.
// systemd: `load=`, `active=`, `enabled=` (systemctl's words), and with
// daemon_reload `reload=` (NeedDaemonReload) and `unitfile=0|1` (a unit
// file exists on disk); sysv:
// `exists=0|1`, `status=RC` (of `service NAME status`), `entool=` and
// `enabled=0|1`.
func (serviceProvider) Probe(s *ServiceSpec, req *Request) (string, error) {
	q := shell.Quote(s.Service)
	if initSystem(req, s) == "systemd" {
		script := "printf 'load=%s\\n' \"$(systemctl show -p LoadState --value " + q + " 2>/dev/null)\"\n" +
			"printf 'active=%s\\n' \"$(systemctl is-active " + q + " 2>/dev/null)\"\n" +
			"printf 'enabled=%s\\n' \"$(systemctl is-enabled " + q + " 2>/dev/null)\"\n"
		if s.DaemonReload {
			script += "printf 'reload=%s\\n' \"$(systemctl show -p NeedDaemonReload --value " + q + " 2>/dev/null)\"\n" +
				"u=0; for d in /etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system; do if [ -f \"$d\"/" + shell.Quote(unitFile(s.Service)) + " ]; then u=1; fi; done; echo unitfile=$u\n"
		}
		return script, nil
	}
	return "if [ -f /etc/init.d/" + q + " ]; then echo exists=1; else echo exists=0; fi\n" +
		sysvFunc(s.Service) +
		"svc status </dev/null >/dev/null 2>&1; echo status=$?\n" +
		"if command -v update-rc.d >/dev/null 2>&1; then echo entool=update-rc.d\n" +
		"  set -- /etc/rc[2345].d/S[0-9][0-9]" + q + "; if [ -e \"$1\" ]; then echo enabled=1; else echo enabled=0; fi\n" +
		"elif command -v chkconfig >/dev/null 2>&1; then echo entool=chkconfig\n" +
		"  if chkconfig " + q + " >/dev/null 2>&1; then echo enabled=1; else echo enabled=0; fi\n" +
		"else echo entool=none; fi\n", nil
}

// Check compares running and enabled state with the wanted ones.
func (serviceProvider) Check(s *ServiceSpec, req *Request, probe connection.Result) (*Change, error) {
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	pl := servicePlan{Name: s.Service, Init: initSystem(req, s)}
	var running, missing, masked bool
	var enabled, enabledFixed bool // enabledFixed: cannot be changed (static)
	var fields []Field
	if pl.Init == "systemd" {
		missing = p.get("load") == "not-found" || p.get("load") == ""
		switch p.get("active") {
		case "active", "activating", "reloading":
			running = true
		}
		switch p.get("enabled") {
		case "enabled", "enabled-runtime", "alias":
			enabled = true
		case "static", "indirect", "generated", "transient":
			enabledFixed = true
		case "masked", "masked-runtime":
			masked = true
		}
		if p.get("load") == "masked" {
			masked = true
		}
		if s.DaemonReload {
			// systemd's own word, or a unit file on disk for a unit it has
			// not loaded (created since the last reload).
			switch {
			case p.get("reload") == "yes":
				pl.Reload = true
				fields = append(fields, Field{Name: "daemon_reload", Before: "unit files changed on disk", After: "reloaded"})
			case missing && p.get("unitfile") == "1":
				pl.Reload = true
				missing = false
				fields = append(fields, Field{Name: "daemon_reload", Before: "unit file not loaded yet", After: "reloaded"})
			}
		}
		if s.Masked != nil && *s.Masked != masked {
			v := *s.Masked
			pl.Mask = &v
			fields = append(fields, Field{Name: "masked", Before: strconv.FormatBool(masked), After: strconv.FormatBool(v)})
		}
	} else {
		if s.DaemonReload || s.Masked != nil {
			return nil, fmt.Errorf("daemon_reload and masked need systemd, and the host's init system is not systemd (set provider = \"systemd\" if the init_system fact is wrong)")
		}
		missing = p.get("exists") != "1"
		rc, err := strconv.Atoi(p.get("status"))
		if err != nil {
			return nil, fmt.Errorf("malformed probe output: status=%q", p.get("status"))
		}
		running = rc == 0 && !missing
		enabled = p.get("enabled") == "1"
		pl.EnTool = p.get("entool")
		if s.Enabled != nil && pl.EnTool == "none" {
			return nil, fmt.Errorf("cannot manage enabled: the host has neither update-rc.d nor chkconfig")
		}
	}
	pl.Missing = missing
	ch := &Change{Fields: fields}
	if missing {
		ch.Message = "service " + s.Service + " not found (yet); it must exist by the time this is applied"
	}
	runWord := map[bool]string{true: "running", false: "stopped"}
	switch s.State {
	case "started":
		if !running {
			pl.Action = "start"
			ch.Fields = append(ch.Fields, Field{Name: "state", Before: "stopped", After: "running"})
		}
	case "stopped":
		if running {
			pl.Action = "stop"
			ch.Fields = append(ch.Fields, Field{Name: "state", Before: "running", After: "stopped"})
		}
	case "restarted":
		pl.Action = "restart"
		ch.Fields = append(ch.Fields, Field{Name: "state", Before: runWord[running], After: "restarted"})
	case "reloaded":
		pl.Action = "reload"
		if !running {
			pl.Action = "start"
		}
		ch.Fields = append(ch.Fields, Field{Name: "state", Before: runWord[running], After: "reloaded"})
	}
	switch {
	case s.Enabled != nil && masked && pl.Mask != nil && !*pl.Mask:
		// Unmasking reveals the enablement masking hid: set it either way
		// (enable and disable are idempotent).
		v := *s.Enabled
		pl.Enable = &v
		ch.Fields = append(ch.Fields, Field{Name: "enabled", Before: "masked", After: strconv.FormatBool(v)})
	case s.Enabled != nil && !enabledFixed && enabled != *s.Enabled && !(masked && !*s.Enabled):
		v := *s.Enabled
		pl.Enable = &v
		ch.Fields = append(ch.Fields, Field{Name: "enabled", Before: strconv.FormatBool(enabled), After: strconv.FormatBool(v)})
	}
	if masked && pl.Mask == nil {
		// systemctl would refuse: say so now, naming the cure.
		if pl.Action != "" && pl.Action != "stop" {
			return nil, fmt.Errorf("unit %s is masked and cannot be started (state = %q); set masked = false to unmask it", s.Service, s.State)
		}
		if pl.Enable != nil && *pl.Enable {
			return nil, fmt.Errorf("unit %s is masked and cannot be enabled; set masked = false to unmask it", s.Service)
		}
	}
	switch {
	case s.State == "restarted" || s.State == "reloaded":
		ch.Action = Run
	case len(ch.Fields) > 0:
		ch.Action = Update
	default:
		ch.Action = None
		return ch, nil
	}
	ch.Plan = pl
	return ch, nil
}

// Apply starts/stops/restarts/reloads and enables/disables the service.
func (serviceProvider) Apply(ctx context.Context, h Host, s *ServiceSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[servicePlan](ch, "service")
	if err != nil {
		return nil, err
	}
	what, script, err := serviceScript(pl)
	if err != nil {
		return nil, err
	}
	if _, err := run(ctx, h, what, script, nil); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}

// ApplyStep is Apply as one step: Apply runs one script, serviceScript.
func (serviceProvider) ApplyStep(s *ServiceSpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[servicePlan](ch, "service")
	if err != nil {
		return Step{}, false, err
	}
	what, script, err := serviceScript(pl)
	if err != nil {
		return Step{}, false, err
	}
	return Step{Script: script, What: what}, true, nil
}

// serviceScript is the script that performs pl, and what it does for its
// error ("service nginx").
func serviceScript(pl servicePlan) (what, script string, err error) {
	q := shell.Quote(pl.Name)
	var b strings.Builder
	b.WriteString("set -e\n")
	if pl.Init == "systemd" {
		// Order: reload the unit files, unmask, then start/stop and
		// enable/disable the unit as now loaded, mask last.
		if pl.Reload {
			b.WriteString("systemctl daemon-reload\n")
		}
		if pl.Mask != nil && !*pl.Mask {
			b.WriteString("systemctl unmask " + q + "\n")
		}
		if pl.Action != "" {
			b.WriteString("systemctl " + pl.Action + " " + q + "\n")
		}
		if pl.Enable != nil {
			b.WriteString("systemctl " + map[bool]string{true: "enable", false: "disable"}[*pl.Enable] + " " + q + "\n")
		}
		if pl.Mask != nil && *pl.Mask {
			b.WriteString("systemctl mask " + q + "\n")
		}
	} else {
		if pl.Action != "" {
			// The script's output goes through a temp file: a daemon that
			// keeps the inherited stdout open would otherwise hold the
			// command open until it exits.
			b.WriteString(sysvFunc(pl.Name) + "o=$(mktemp)\nset +e\nsvc " + pl.Action +
				" </dev/null >\"$o\" 2>&1\nrc=$?\nset -e\ncat \"$o\" >&2\nrm -f \"$o\"\n[ $rc -eq 0 ]\n")
		}
		if pl.Enable != nil {
			switch {
			case pl.EnTool == "update-rc.d" && *pl.Enable:
				b.WriteString("update-rc.d " + q + " defaults\nupdate-rc.d " + q + " enable\n")
			case pl.EnTool == "update-rc.d":
				b.WriteString("update-rc.d " + q + " disable\n")
			case pl.EnTool == "chkconfig":
				b.WriteString("chkconfig " + q + " " + map[bool]string{true: "on", false: "off"}[*pl.Enable] + "\n")
			default:
				return "", "", fmt.Errorf("service %s: cannot manage enabled: the host has neither update-rc.d nor chkconfig", pl.Name)
			}
		}
	}
	return "service " + pl.Name, b.String(), nil
}

// initSystem is the init system that manages s on the host.
func initSystem(req *Request, s *ServiceSpec) string {
	if s.Provider != "" {
		return s.Provider
	}
	if v, _ := req.Facts["init_system"].(string); v == "systemd" {
		return "systemd"
	}
	return "sysv"
}

// unitFile is the file name of a service's unit: NAME.service unless the
// name already has a unit suffix.
func unitFile(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		switch name[i+1:] {
		case "service", "socket", "timer", "target", "path", "mount", "automount", "swap", "slice", "scope", "device":
			return name
		}
	}
	return name + ".service"
}

// sysvFunc defines svc(): the init script through `service` when present.
func sysvFunc(name string) string {
	q := shell.Quote(name)
	return "svc() { if command -v service >/dev/null 2>&1; then service " + q + " \"$1\"; else /etc/init.d/" + q + " \"$1\"; fi; }\n"
}
