package sshconfig

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// jumpValue is a parsed ProxyJump line.
type jumpValue struct {
	hops []Hop
	none bool
}

// Limits OpenSSH enforces.
const (
	maxIdentityFiles   = 100 // SSH_MAX_IDENTITY_FILES
	maxCertFiles       = 100 // SSH_MAX_CERTIFICATE_FILES
	maxKnownHostsFiles = 32  // SSH_MAX_HOSTS_FILES
	maxIncludeDepth    = 16  // READCONF_MAX_DEPTH
	maxIncludedFiles   = 4096
)

// noneTime marks a time keyword set to "none" (OpenSSH: unset).
const noneTime = time.Duration(-1)

// parseValue checks and converts the arguments of an honoured keyword (the
// value stored in line.val). kw is lowercase.
func parseValue(kw string, args []string, rest string) (any, error) {
	switch kw {
	case "proxyjump":
		hops, none, err := parseJump(strings.TrimLeft(rest, " \t\r\n="))
		if err != nil {
			return nil, errors.New("invalid ProxyJump " + strconv.Quote(rest) + ": " + err.Error() + "; write [user@]host[:port] or ssh://[user@]host[:port], comma-separated, or none")
		}
		return jumpValue{hops, none}, nil
	case "userknownhostsfile", "globalknownhostsfile":
		return parseFileList(args)
	}
	arg, err := oneArg(args)
	if err != nil {
		return nil, err
	}
	return parseScalar(kw, arg)
}

// parseScalar converts the single argument of a one-valued keyword.
func parseScalar(kw, arg string) (any, error) {
	switch kw {
	case "port":
		return parsePort(arg)
	case "identitiesonly", "hashknownhosts", "passwordauthentication", "batchmode",
		"kbdinteractiveauthentication", "challengeresponseauthentication",
		"skeyauthentication", "tisauthentication":
		return parseChoice(arg, map[string]bool{"yes": true, "true": true, "no": false, "false": false})
	case "pubkeyauthentication", "dsaauthentication":
		return parseChoice(arg, map[string]bool{"yes": true, "true": true, "unbound": true, "host-bound": true, "no": false, "false": false})
	case "stricthostkeychecking":
		return parseChoice(arg, map[string]string{"yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no", "ask": "ask", "accept-new": "accept-new"})
	case "addressfamily":
		return parseChoice(arg, map[string]string{"any": "any", "inet": "inet", "inet6": "inet6"})
	case "connecttimeout", "serveraliveinterval":
		return parseTime(arg)
	case "serveralivecountmax":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 {
			return nil, errors.New("bad integer " + strconv.Quote(arg) + ": want a whole number 0 or more")
		}
		return n, nil
	case "identityagent":
		return arg, checkAgentSyntax(arg)
	}
	return arg, nil // HostName, User, IdentityFile, CertificateFile, IgnoreUnknown
}

// oneArg returns the only argument, or an error for none, an empty one or
// more than one.
func oneArg(args []string) (string, error) {
	if len(args) == 0 || args[0] == "" {
		return "", errors.New("missing argument: give this keyword a value")
	}
	if len(args) > 1 {
		return "", errors.New("extra arguments at end of line: quote a value that contains spaces")
	}
	return args[0], nil
}

// parseChoice looks arg up case-insensitively in choices.
func parseChoice[T any](arg string, choices map[string]T) (T, error) {
	v, ok := choices[strings.ToLower(arg)]
	if !ok {
		keys := slices.Sorted(maps.Keys(choices))
		return v, errors.New("unsupported value " + strconv.Quote(arg) + ": want one of " + strings.Join(keys, ", "))
	}
	return v, nil
}

// parseTime is OpenSSH's time format: "none", or a sequence of numbers each
// optionally followed by s, m, h, d or w (any case); a bare number is
// seconds. The total must fit in an int32 number of seconds.
func parseTime(arg string) (time.Duration, error) {
	if arg == "none" {
		return noneTime, nil
	}
	bad := errors.New("invalid time value " + strconv.Quote(arg) + ": write seconds, or e.g. 1m30s, or none")
	var total int64
	for s := arg; s != ""; {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 {
			return 0, bad
		}
		v, err := strconv.ParseInt(s[:n], 10, 64)
		mult, unitLen := timeUnit(s[n:])
		if err != nil || mult == 0 || v > math.MaxInt32/mult {
			return 0, bad
		}
		total += v * mult
		if total > math.MaxInt32 {
			return 0, bad
		}
		s = s[n+unitLen:]
	}
	return time.Duration(total) * time.Second, nil
}

// timeUnit returns the multiplier of the unit at the start of s (0 for a
// bad unit) and the unit's length.
func timeUnit(s string) (int64, int) {
	if s == "" {
		return 1, 0
	}
	switch s[0] {
	case 's', 'S':
		return 1, 1
	case 'm', 'M':
		return 60, 1
	case 'h', 'H':
		return 3600, 1
	case 'd', 'D':
		return 86400, 1
	case 'w', 'W':
		return 604800, 1
	}
	return 0, 0
}

// parseFileList checks a known-hosts file list: no empty entries, "none"
// only alone, at most maxKnownHostsFiles.
func parseFileList(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("missing argument: give one or more files, or none")
	}
	for _, a := range args {
		if a == "" {
			return nil, errors.New("empty argument: remove the empty quotes")
		}
		if strings.EqualFold(a, "none") && len(args) > 1 {
			return nil, errors.New("\"none\" must appear alone")
		}
	}
	if len(args) > maxKnownHostsFiles {
		return nil, errors.New("too many files (at most " + strconv.Itoa(maxKnownHostsFiles) + ")")
	}
	return args, nil
}

// checkAgentSyntax rejects IdentityAgent values OpenSSH rejects when
// reading them: a "${" without "}", "${}", and a legacy "$NAME" whose NAME
// is not a valid variable name.
func checkAgentSyntax(arg string) error {
	for s := arg; ; {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 || end == 2 {
			return errors.New("invalid environment expansion " + strconv.Quote(arg) + ": write ${NAME}")
		}
		s = s[i+end:]
	}
	if strings.HasPrefix(arg, "$") && !strings.HasPrefix(arg, "${") && !validEnvName(arg[1:]) {
		return errors.New("invalid environment variable name " + strconv.Quote(arg))
	}
	return nil
}

// validEnvName: letters, digits and '_', not starting with a digit.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}
