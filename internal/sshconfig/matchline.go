package sshconfig

import (
	"errors"
	"strings"
)

// criterion is one Match criterion.
type criterion struct {
	negate bool
	attr   string // lowercase
	arg    string
}

// matchArgAttrs are the Match criteria that take an argument.
func matchArgAttr(attr string) bool {
	switch attr {
	case "host", "originalhost", "user", "localuser", "exec",
		"localnetwork", "tagged", "version", "command", "sessiontype":
		return true
	}
	return false
}

// parseMatch checks a Match line's criteria as OpenSSH's match_cfg_line
// does: "all" stands alone (or after at most one criterion), "canonical"
// and "final" take no argument, every other criterion takes one, written as
// the next word or after '='.
func parseMatch(args []string) ([]criterion, error) {
	var crit []criterion
	attributes := 0
	for i := 0; i < len(args); i++ {
		c := criterion{attr: args[i]}
		if c.negate = strings.HasPrefix(c.attr, "!"); c.negate {
			c.attr = c.attr[1:]
		}
		lower := strings.ToLower(c.attr)
		if lower == "all" {
			if attributes > 1 || i+1 < len(args) {
				return nil, errors.New("'all' cannot be combined with other Match attributes")
			}
			return append(crit, criterion{negate: c.negate, attr: "all"}), nil
		}
		attributes++
		if lower == "canonical" || lower == "final" {
			crit = append(crit, criterion{negate: c.negate, attr: lower})
			continue
		}
		if k, v, ok := strings.Cut(c.attr, "="); ok && matchArgAttr(strings.ToLower(k)) {
			lower, c.arg = strings.ToLower(k), v
		} else if i+1 < len(args) {
			i++
			c.arg = args[i]
		} else {
			return nil, errors.New("missing argument for Match '" + args[i] + "'")
		}
		if !matchArgAttr(lower) {
			return nil, errors.New("unsupported Match attribute " + c.attr + ": use all, canonical, final, host, originalhost, user, localuser or exec")
		}
		if c.arg == "" && lower != "tagged" && lower != "command" {
			return nil, errors.New("missing Match criteria for " + lower)
		}
		c.attr = lower
		crit = append(crit, c)
	}
	if len(crit) == 0 {
		return nil, errors.New("one or more attributes required for Match")
	}
	return crit, nil
}
