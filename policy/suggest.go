package policy

// Suggest returns the candidate closest to s by edit distance (ignoring
// case), or "" when none is close enough to be a likely typo: the "did you
// mean" of every unknown-name message (keys, resource types, variables).
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }
