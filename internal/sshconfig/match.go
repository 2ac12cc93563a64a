package sshconfig

import "strings"

// matchPattern reports whether s matches pattern, where '*' matches any run
// of characters and '?' any one character; the comparison is
// case-sensitive (OpenSSH's match_pattern). It runs in O(len(s)*len(pattern))
// at worst, unlike a naive recursive matcher.
func matchPattern(s, pattern string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			si++
			pi++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// maxSubpattern is the length from which OpenSSH's match_pattern_list
// gives up on a subpattern (its buffer is 1024 bytes).
const maxSubpattern = 1023

// matchPatternList matches s against a comma-separated list of patterns,
// each optionally negated with '!'. It returns -1 when a negated pattern
// matches, 1 when a positive one matches (and no negated one), 0 otherwise.
// With lower, the patterns are lowercased first (s is not).
func matchPatternList(s, list string, lower bool) int {
	got := 0
	for _, sub := range strings.Split(list, ",") {
		negated := strings.HasPrefix(sub, "!")
		if negated {
			sub = sub[1:]
		}
		if len(sub) >= maxSubpattern {
			return 0
		}
		if lower {
			sub = strings.ToLower(sub)
		}
		if matchPattern(s, sub) {
			if negated {
				return -1
			}
			got = 1
		}
	}
	return got
}

// matchHostname is matchPatternList for host names: both sides compared in
// lowercase.
func matchHostname(host, list string) int {
	return matchPatternList(strings.ToLower(host), list, true)
}

// hostLineMatches evaluates the patterns of a Host line against host: it
// applies when some pattern matches and no negated pattern does.
func hostLineMatches(patterns []string, host string) bool {
	matched := false
	for _, p := range patterns {
		negated := strings.HasPrefix(p, "!")
		if negated {
			p = p[1:]
		}
		if matchPattern(host, p) {
			if negated {
				return false
			}
			matched = true
		}
	}
	return matched
}
