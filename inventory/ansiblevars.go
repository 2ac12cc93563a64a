package inventory

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/defaults"
	"github.com/opsmop/opsmop/internal/kind"
)

// ansibleVar maps one of Ansible's connection variables to the opsmop
// variable holding the same setting; conv turns Ansible's value into the
// type opsmop reads.
type ansibleVar struct {
	ansible, opsmop string
	conv            func(v any) (any, error)
}

// ansibleVarTable lists the Ansible connection variables opsmop honours,
// old aliases included. docs/inventory.md has the same table.
func ansibleVarTable() []ansibleVar {
	return []ansibleVar{
		{"ansible_host", defaults.VarHost, ansibleString},
		{"ansible_ssh_host", defaults.VarHost, ansibleString},
		{"ansible_port", defaults.VarPort, ansiblePort},
		{"ansible_ssh_port", defaults.VarPort, ansiblePort},
		{"ansible_user", defaults.VarSSHUsername, ansibleString},
		{"ansible_ssh_user", defaults.VarSSHUsername, ansibleString},
		{"ansible_password", defaults.VarSSHPassword, ansibleString},
		{"ansible_ssh_pass", defaults.VarSSHPassword, ansibleString},
		{"ansible_ssh_password", defaults.VarSSHPassword, ansibleString},
		{"ansible_private_key_file", defaults.VarSSHPrivateKey, ansibleString},
		{"ansible_ssh_private_key_file", defaults.VarSSHPrivateKey, ansibleString},
		{"ansible_become", defaults.VarSudo, ansibleBool},
		{"ansible_sudo", defaults.VarSudo, ansibleBool},
		{"ansible_become_user", defaults.VarSudoUsername, ansibleString},
		{"ansible_sudo_user", defaults.VarSudoUsername, ansibleString},
		{"ansible_become_password", defaults.VarSudoPassword, ansibleString},
		{"ansible_become_pass", defaults.VarSudoPassword, ansibleString},
		{"ansible_sudo_pass", defaults.VarSudoPassword, ansibleString},
		{"ansible_host_key_checking", defaults.VarCheckHostKeys, ansibleBool},
		{"ansible_ssh_host_key_checking", defaults.VarCheckHostKeys, ansibleBool},
		{"ansible_connection", defaults.VarConnection, ansibleConnection},
	}
}

// ansibleRefused are Ansible variables that change how Ansible connects or
// runs commands in a way opsmop cannot follow, with the one value (if any)
// that matches what opsmop does anyway. Set to anything else, they are an
// error: ignoring them would connect differently than Ansible does.
func ansibleRefusedTable() []struct{ name, ok string } {
	return []struct{ name, ok string }{
		{"ansible_become_method", "sudo"},
		{"ansible_shell_type", "sh"},
		{"ansible_shell_executable", "/bin/sh"},
		{"ansible_ssh_args", ""},
		{"ansible_ssh_extra_args", ""},
		{"ansible_ssh_executable", ""},
		{"ansible_become_exe", ""},
		{"ansible_become_flags", ""},
		{"ansible_sudo_exe", ""},
		{"ansible_sudo_flags", ""},
	}
}

func ansibleString(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int, float64, bool:
		return fmt.Sprint(x), nil
	}
	return nil, fmt.Errorf("must be a string, not %s", kind.A(kind.Of(v)))
}

func ansiblePort(v any) (any, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err == nil {
			return n, nil
		}
	}
	return nil, fmt.Errorf("must be a port number, not %s", kind.Describe(v))
}

// ansibleBool reads a boolean as Ansible's boolean filter does.
func ansibleBool(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "y", "yes", "on", "1", "true", "t":
			return true, nil
		case "n", "no", "off", "0", "false", "f":
			return false, nil
		}
	}
	return nil, fmt.Errorf("must be a boolean (true/false, yes/no, on/off, 1/0), not %s", kind.Describe(v))
}

func ansibleConnection(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("must be a string, not %s", kind.A(kind.Of(v)))
	}
	switch s {
	case "local":
		return defaults.ConnectionLocal, nil
	case "ssh", "smart", "paramiko", "paramiko_ssh":
		return defaults.ConnectionSSH, nil
	}
	return nil, fmt.Errorf("connection %q is not one opsmop has (it connects with ssh, or local); remove the host or set ansible_connection to ssh or local", s)
}

// ansibleJump reads ansible_ssh_common_args: only a jump host given as
// "-J HOST", "-JHOST", "-o ProxyJump=HOST" or "-oProxyJump=HOST" can be
// followed (as opsmop_via), and HOST must be a host of the inventory.
func ansibleJump(v any, isHost func(string) bool) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, not %s", kind.A(kind.Of(v)))
	}
	words := strings.Fields(s)
	if len(words) == 0 {
		return "", nil
	}
	var jump string
	switch {
	case len(words) == 2 && (words[0] == "-J" || words[0] == "-o" && strings.HasPrefix(words[1], "ProxyJump=")):
		jump = strings.TrimPrefix(words[1], "ProxyJump=")
	case len(words) == 1 && strings.HasPrefix(words[0], "-J"):
		jump = words[0][2:]
	case len(words) == 1 && strings.HasPrefix(words[0], "-oProxyJump="):
		jump = strings.TrimPrefix(words[0], "-oProxyJump=")
	default:
		return "", fmt.Errorf("%q: opsmop follows only a jump host (-J HOST or -o ProxyJump=HOST); set opsmop_via to the jump host's inventory name and remove the other SSH options", s)
	}
	if jump == "" || !isHost(jump) {
		return "", fmt.Errorf("jump host %q is not a host of this inventory; add it to the inventory (with its ansible_host/ansible_user) so opsmop can connect to it", jump)
	}
	return jump, nil
}

// mapAnsibleVars returns vars with Ansible's connection variables
// translated to opsmop's (ansible_host gives opsmop_host, and so on; the
// Ansible variables are kept too). An Ansible variable and the opsmop
// variable (or two Ansible aliases) with different values is an error, and
// so is a connection-affecting Ansible variable opsmop cannot follow.
// isHost reports whether a name is a host of the inventory. vars is not
// modified; when nothing is translated, vars itself is returned.
func mapAnsibleVars(host string, vars map[string]any, isHost func(string) bool) (map[string]any, error) {
	has := false
	for k := range vars {
		if strings.HasPrefix(k, "ansible_") {
			has = true
			break
		}
	}
	if !has {
		return vars, nil
	}
	// No error below shows the value of a password variable: ansibleString
	// names only the type.
	fail := func(name string, err error) error {
		return fmt.Errorf("host %s: variable %s: %w", host, name, err)
	}
	for _, r := range ansibleRefusedTable() {
		v, ok := vars[r.name]
		if !ok || v == nil {
			continue
		}
		if s, isStr := v.(string); isStr && (s == r.ok || s == "") {
			continue
		}
		if r.ok == "" {
			return nil, fail(r.name, fmt.Errorf("is set to %s, which opsmop cannot follow (it would connect or run commands differently than Ansible); remove it", kind.Describe(v)))
		}
		return nil, fail(r.name, fmt.Errorf("is %s; opsmop supports only %q: remove it or set it to %q", kind.Describe(v), r.ok, r.ok))
	}
	out := copyVars(vars)
	from := map[string]string{} // opsmop name -> the variable that set it
	for _, m := range ansibleVarTable() {
		v, ok := vars[m.ansible]
		if !ok || v == nil {
			continue
		}
		cv, err := m.conv(v)
		if err != nil {
			return nil, fail(m.ansible, err)
		}
		if err := setMapped(out, from, m.ansible, m.opsmop, cv); err != nil {
			return nil, fmt.Errorf("host %s: %w", host, err)
		}
	}
	if v, ok := vars["ansible_ssh_common_args"]; ok && v != nil {
		jump, err := ansibleJump(v, isHost)
		if err != nil {
			return nil, fail("ansible_ssh_common_args", err)
		}
		if jump != "" {
			if err := setMapped(out, from, "ansible_ssh_common_args", defaults.VarVia, jump); err != nil {
				return nil, fmt.Errorf("host %s: %w", host, err)
			}
		}
	}
	return out, nil
}

// setMapped sets out[opsmop] = v for the Ansible variable name, unless out
// already holds a different value there.
func setMapped(out map[string]any, from map[string]string, name, opsmop string, v any) error {
	if cur, ok := out[opsmop]; ok && cur != nil && !reflect.DeepEqual(cur, v) {
		other := from[opsmop]
		if other == "" {
			other = opsmop
		}
		if SecretKey(opsmop) {
			return fmt.Errorf("%s and %s are both set, to different values; keep one of them", name, other)
		}
		return fmt.Errorf("%s (%s) and %s (%s) are both set, to different values; keep one of them", name, kind.Describe(v), other, kind.Describe(cur))
	}
	out[opsmop] = v
	if _, ok := from[opsmop]; !ok {
		from[opsmop] = name
	}
	return nil
}
