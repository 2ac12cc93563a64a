package providers

import (
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
)

// TestServiceCommands drives systemd and sysv (chkconfig) through the fake
// host and asserts the exact commands.
func TestServiceCommands(t *testing.T) {
	tests := []struct {
		name   string
		init   string
		spec   ServiceSpec
		probe  string // the probe must contain this
		out    string
		action Action
		fields map[string]string
		apply  string // the exact apply script
	}{
		{
			name: "systemd start and enable", init: "systemd",
			spec:   ServiceSpec{Service: "nginx", State: "started", Enabled: ptr(true)},
			probe:  "systemctl is-active nginx",
			out:    "load=loaded\nactive=inactive\nenabled=disabled\n",
			action: Update,
			fields: map[string]string{"state": "stopped -> running", "enabled": "false -> true"},
			apply:  "set -e\nsystemctl start nginx\nsystemctl enable nginx\n",
		},
		{
			name: "systemd already running and enabled", init: "systemd",
			spec:   ServiceSpec{Service: "nginx", State: "started", Enabled: ptr(true)},
			out:    "load=loaded\nactive=active\nenabled=enabled\n",
			action: None,
		},
		{
			name: "systemd stop and disable", init: "systemd",
			spec:   ServiceSpec{Service: "nginx", State: "stopped", Enabled: ptr(false)},
			out:    "load=loaded\nactive=active\nenabled=enabled\n",
			action: Update,
			apply:  "set -e\nsystemctl stop nginx\nsystemctl disable nginx\n",
		},
		{
			name: "systemd static unit counts as either", init: "systemd",
			spec:   ServiceSpec{Service: "systemd-journald", Enabled: ptr(false)},
			out:    "load=loaded\nactive=active\nenabled=static\n",
			action: None,
		},
		{
			name: "systemd restarted always runs", init: "systemd",
			spec:   ServiceSpec{Service: "nginx", State: "restarted"},
			out:    "load=loaded\nactive=active\nenabled=enabled\n",
			action: Run,
			fields: map[string]string{"state": "running -> restarted"},
			apply:  "set -e\nsystemctl restart nginx\n",
		},
		{
			name: "systemd reload of a stopped service starts it", init: "systemd",
			spec:   ServiceSpec{Service: "nginx", State: "reloaded"},
			out:    "load=loaded\nactive=failed\nenabled=enabled\n",
			action: Run,
			apply:  "set -e\nsystemctl start nginx\n",
		},
		{
			name: "provider overrides facts", init: "sysv",
			spec:   ServiceSpec{Service: "nginx", State: "reloaded", Provider: "systemd"},
			out:    "load=loaded\nactive=active\nenabled=enabled\n",
			action: Run,
			apply:  "set -e\nsystemctl reload nginx\n",
		},
		{
			name: "sysv with chkconfig", init: "sysv",
			spec:   ServiceSpec{Service: "httpd", Enabled: ptr(true)},
			probe:  "elif command -v chkconfig >/dev/null 2>&1; then echo entool=chkconfig\n  if chkconfig httpd",
			out:    "exists=1\nstatus=3\nentool=chkconfig\nenabled=0\n",
			action: Update,
			fields: map[string]string{"enabled": "false -> true"},
			apply:  "set -e\nchkconfig httpd on\n",
		},
		{
			name: "sysv update-rc.d disable", init: "",
			spec:   ServiceSpec{Service: "ssh", Enabled: ptr(false)},
			probe:  "set -- /etc/rc[2345].d/S[0-9][0-9]ssh",
			out:    "exists=1\nstatus=0\nentool=update-rc.d\nenabled=1\n",
			action: Update,
			apply:  "set -e\nupdate-rc.d ssh disable\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, nil)
			req.Facts["init_system"] = tc.init
			script, err := mustProvider("service").Probe(req)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(script, tc.probe) {
				t.Errorf("probe: got %q; want it to contain %q", script, tc.probe)
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
	// No tool to manage enabled is an error at check time.
	req := newReq(&ServiceSpec{Service: "x", Enabled: ptr(true)}, "", nil, nil)
	if _, err := mustProvider("service").Check(req, connection.Result{Stdout: []byte("exists=1\nstatus=0\nentool=none\n")}); err == nil || !strings.Contains(err.Error(), "neither update-rc.d nor chkconfig") {
		t.Errorf("got %v; want an error about update-rc.d/chkconfig", err)
	}
}

const testHash = "$6$opsmopsalt$BXHAfHi.A4T5XkUDmJCMb42EibNJuyj6aX0siA6V7R4.g93Oq1euNRDvBDHkYdMWF5Oav89B/g3szLF75rM7q0"

func TestUserCommands(t *testing.T) {
	const alice = "passwd=alice:x:1001:1001:Alice:/home/alice:/bin/sh\npgroup=alice\ngroups=alice adm\n"
	tests := []struct {
		name    string
		spec    UserSpec
		out     string
		action  Action
		message string
		scripts []string
		stdins  []string
	}{
		{
			name:   "create with everything",
			spec:   UserSpec{Name: "bob", UID: ptr(1500), Group: "users", Groups: []string{"adm", "sudo"}, Home: "/srv/bob", Shell: "/bin/bash", System: true, Comment: "Bob's account", Password: testHash, CreateHome: ptr(false)},
			out:    "passwd=\n",
			action: Create,
			scripts: []string{
				"useradd -u 1500 -g users -G adm,sudo -d /srv/bob -s /bin/bash -c 'Bob'\\''s account' -r -M bob",
				"chpasswd -e",
			},
			stdins: []string{"", "bob:" + testHash + "\n"},
		},
		{
			name: "create_home defaults to true", spec: UserSpec{Name: "bob"}, out: "passwd=\n", action: Create,
			scripts: []string{"useradd -m bob"}, stdins: []string{""},
		},
		{
			name:    "modify shell, comment and exact groups",
			spec:    UserSpec{Name: "alice", Shell: "/bin/bash", Comment: "Alice A.", Groups: []string{"sudo"}},
			out:     alice,
			action:  Update,
			scripts: []string{"usermod -G sudo -s /bin/bash -c 'Alice A.' alice"},
			stdins:  []string{""},
		},
		{
			name:    "append groups adds only the missing",
			spec:    UserSpec{Name: "alice", Groups: []string{"adm", "docker"}, Append: true},
			out:     alice,
			action:  Update,
			scripts: []string{"usermod -a -G docker alice"},
			stdins:  []string{""},
		},
		{
			name:   "primary group by gid matches",
			spec:   UserSpec{Name: "alice", Group: "1001", UID: ptr(1001)},
			out:    alice,
			action: None,
		},
		{
			name:    "password only",
			spec:    UserSpec{Name: "alice", Password: testHash},
			out:     alice + "shadow=$6$old$xyz\n",
			action:  Update,
			scripts: []string{"chpasswd -e"},
			stdins:  []string{"alice:" + testHash + "\n"},
		},
		{
			name:   "password unchanged",
			spec:   UserSpec{Name: "alice", Password: testHash},
			out:    alice + "shadow=" + testHash + "\n",
			action: None,
		},
		{
			name:    "shadow unreadable: password not managed",
			spec:    UserSpec{Name: "alice", Password: testHash},
			out:     alice + "shadow_unreadable=1\n",
			action:  None,
			message: "password not managed",
		},
		{
			name: "absent", spec: UserSpec{Name: "alice", State: "absent"}, out: alice, action: Delete,
			scripts: []string{"userdel alice"}, stdins: []string{""},
		},
		{
			name: "absent already", spec: UserSpec{Name: "alice", State: "absent"}, out: "passwd=\n", action: None,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, nil)
			script, err := mustProvider("user").Probe(req)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(script, "$6$") {
				t.Errorf("probe script contains the password hash")
			}
			ch, err := mustProvider("user").Check(req, connection.Result{Stdout: []byte(tc.out)})
			if err != nil {
				t.Fatal(err)
			}
			if ch.Action != tc.action {
				t.Fatalf("action: got %s %v; want %s", ch.Action, ch.Fields, tc.action)
			}
			if !strings.Contains(ch.Message, tc.message) {
				t.Errorf("message: got %q; want it to contain %q", ch.Message, tc.message)
			}
			for _, f := range ch.Fields {
				if strings.Contains(f.Before+f.After, "$6$") {
					t.Errorf("field %s shows a password hash: %v", f.Name, f)
				}
			}
			if !ch.Changed() {
				return
			}
			f := &fakeHost{}
			if _, err := mustProvider("user").Apply(testCtx(t), f, req, ch); err != nil {
				t.Fatal(err)
			}
			if strings.Join(f.scripts, "\n") != strings.Join(tc.scripts, "\n") || strings.Join(f.stdins, "|") != strings.Join(tc.stdins, "|") {
				t.Errorf("got scripts %q stdins %q; want %q %q", f.scripts, f.stdins, tc.scripts, tc.stdins)
			}
		})
	}
}

func TestUserAndGroupErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Provider
		spec any
		want string
	}{
		{"user option-like name", mustProvider("user"), &UserSpec{Name: "-o"}, "is not a valid name"},
		{"user colon in comment", mustProvider("user"), &UserSpec{Name: "a", Comment: "x:y"}, `comment contains ":" at byte 1: /etc/passwd fields cannot hold a colon or control characters`},
		{"user tab in comment", mustProvider("user"), &UserSpec{Name: "a", Comment: "x\ty"}, `comment contains "\t" at byte 1`},
		{"user newline in home", mustProvider("user"), &UserSpec{Name: "a", Home: "/h\n"}, `home contains "\n" at byte 2`},
		{"user DEL in shell", mustProvider("user"), &UserSpec{Name: "a", Shell: "/bin/sh\x7f"}, `shell contains "\x7f" at byte 7`},
		{"user bad hash never echoed", mustProvider("user"), &UserSpec{Name: "a", Password: "secret:value"}, "password contains a colon"},
		{"group bad name", mustProvider("group"), &GroupSpec{Name: "a b"}, "is not a valid name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.Probe(newReq(tc.spec, "", nil, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret:value") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

func TestGroupCommands(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   GroupSpec
		out    string
		action Action
		apply  string
	}{
		{"create system with gid", GroupSpec{Name: "web", GID: ptr(900), System: true}, "group=\n", Create, "groupadd -g 900 -r web"},
		{"change gid", GroupSpec{Name: "web", GID: ptr(901)}, "group=web:x:900:\n", Update, "groupmod -g 901 web"},
		{"unchanged", GroupSpec{Name: "web", GID: ptr(900)}, "group=web:x:900:alice\n", None, ""},
		{"delete", GroupSpec{Name: "web", State: "absent"}, "group=web:x:900:\n", Delete, "groupdel web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, nil)
			ch, err := mustProvider("group").Check(req, connection.Result{Stdout: []byte(tc.out)})
			if err != nil {
				t.Fatal(err)
			}
			if ch.Action != tc.action {
				t.Fatalf("got %s; want %s", ch.Action, tc.action)
			}
			if !ch.Changed() {
				return
			}
			f := &fakeHost{}
			if _, err := mustProvider("group").Apply(testCtx(t), f, req, ch); err != nil {
				t.Fatal(err)
			}
			if len(f.scripts) != 1 || f.scripts[0] != tc.apply {
				t.Errorf("got %q; want [%q]", f.scripts, tc.apply)
			}
		})
	}
}
