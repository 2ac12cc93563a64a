package providers

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/internal/shell"
)

// A batch of path probes (file, template, directory, link, line) would
// start one `stat` per path and one `sha256sum` per managed file: most of
// what a no-op run costs on a host, where creating a process takes
// milliseconds. A ProbePrelude sent first in the batch stats every path
// with one `stat` and hashes every file with one `sha256sum`, and leaves
// each answer in a variable named after the path (opsmop_s_KEY,
// opsmop_h_KEY) that statScript and hashScript read instead of starting
// their own process. The probes print exactly what they print alone.
//
// Which line of stat's output belongs to which path: the prelude first
// tests each path with builtins and passes only those that exist, in
// order, so stat prints one line per argument. If the count of lines is
// not the count of arguments (a path vanished in between, or stat failed
// on one), no variable is set and every probe runs its own stat; the same
// holds for sha256sum (whose lines start with a backslash for names it
// escapes). Files are hashed only when stat's line is there and gives at
// most preludeMaxHash bytes. So the shortcut can make a probe slower,
// never different.

// preludeMaxHash is the largest file the prelude hashes: it hashes all its
// files within one command_timeout, so large ones are left to their own
// probes (each with its own timeout).
const preludeMaxHash = 1 << 20

// ProbedPath is one path a batch's probes will look at: Hash when the
// probe also wants its sha256 (a file whose contents are managed).
type ProbedPath struct {
	Path string
	Hash bool
}

// preludeKey is the variable-name suffix for path p's prelude results.
func preludeKey(p string) string {
	h := sha256.Sum256([]byte(p))
	return hex.EncodeToString(h[:10])
}

// ProbePrelude returns the prelude script for paths (see above), to run
// inline in the persistent shell before the batch's probes, and the
// variables it leaves set, which must be unset once the batch's probes
// have run (connection.Probe.Vars of a last, empty probe). The script
// prints nothing and exits 0.
func ProbePrelude(paths []ProbedPath) (script string, vars []string) {
	var b strings.Builder
	at := map[string]int{}
	var list []ProbedPath
	for _, p := range paths {
		if i, ok := at[p.Path]; ok {
			list[i].Hash = list[i].Hash || p.Hash
			continue
		}
		at[p.Path] = len(list)
		list = append(list, p)
	}
	vars = []string{"opsmop_o", "opsmop_c", "opsmop_r", "opsmop_n", "opsmop_l"}
	b.WriteString("opsmop_pre() {\nopsmop_n='\n'\nset --\n")
	var entries [][2]string
	for _, p := range list {
		q, k := shell.Quote(p.Path), preludeKey(p.Path)
		vars = append(vars, "opsmop_e_"+k, "opsmop_s_"+k)
		b.WriteString("if [ -e " + q + " ] || [ -L " + q + " ]; then set -- \"$@\" " + q + "; opsmop_e_" + k + "=1; fi\n")
		entries = append(entries, [2]string{"opsmop_e_" + k, "opsmop_s_" + k + "=$opsmop_l"})
	}
	writeLineEach(&b, `[ $# -eq 0 ] || opsmop_o=$(stat -c '%a %u %g %U %G %s' -- "$@" 2>/dev/null) || opsmop_o=`, entries)
	b.WriteString("set --\n")
	entries = nil
	for _, p := range list {
		if !p.Hash {
			continue
		}
		q, k := shell.Quote(p.Path), preludeKey(p.Path)
		vars = append(vars, "opsmop_f_"+k, "opsmop_h_"+k)
		b.WriteString("if [ -n \"${opsmop_s_" + k + "-}\" ] && [ \"${opsmop_s_" + k + "##* }\" -le " + strconv.Itoa(preludeMaxHash) + " ] && [ ! -L " + q + " ] && [ -f " + q + " ] && [ -r " + q + " ]; then set -- \"$@\" " + q + "; opsmop_f_" + k + "=1; fi\n")
		// sha256sum starts the line with a backslash when it escapes the name
		entries = append(entries, [2]string{"opsmop_f_" + k, "opsmop_l=${opsmop_l#\\\\}; opsmop_h_" + k + "=${opsmop_l%% *}"})
	}
	if len(entries) > 0 {
		writeLineEach(&b, `if [ $# -gt 0 ] && command -v sha256sum >/dev/null 2>&1; then opsmop_o=$(sha256sum -- "$@" 2>/dev/null) || opsmop_o=; fi`, entries)
	}
	b.WriteString("}\nopsmop_pre; unset -f opsmop_pre\n")
	return b.String(), vars
}

// writeLineEach appends prelude code that runs run (which sets opsmop_o to
// a tool's output for the arguments "$@") and, only when that output has
// exactly one line per argument, walks the entries in order: for each
// whose flag variable (entry[0]) is set, that is whose path was passed,
// it takes the next line into opsmop_l and runs entry[1].
func writeLineEach(b *strings.Builder, run string, entries [][2]string) {
	b.WriteString("opsmop_o=\n" + run + "\n")
	b.WriteString(`[ -z "$opsmop_o" ] || opsmop_o=$opsmop_o$opsmop_n
opsmop_c=0; opsmop_r=$opsmop_o
while [ -n "$opsmop_r" ]; do opsmop_c=$((opsmop_c + 1)); opsmop_r=${opsmop_r#*"$opsmop_n"}; done
if [ "$opsmop_c" -eq $# ]; then
`)
	for _, e := range entries {
		b.WriteString("if [ -n \"${" + e[0] + "-}\" ]; then opsmop_l=${opsmop_o%%\"$opsmop_n\"*}; opsmop_o=${opsmop_o#*\"$opsmop_n\"}; " + e[1] + "; fi\n")
	}
	b.WriteString("fi\n")
}
