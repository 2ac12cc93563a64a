// Package homedir expands the ~ of local paths written in policies,
// inventories, defaults files and password references.
package homedir

import (
	"path/filepath"
	"strings"
)

// Expand returns p with a leading "~" or "~/" replaced by home: "~" is
// home itself and "~/x" is filepath.Join(home, "x") (so cleaned). Any other
// p, "~user/x" included, is returned unchanged, and so is every p when
// home is "" (callers pass os.UserHomeDir's result, "" on its error, or a
// home given to them).
func Expand(p, home string) string {
	switch {
	case home == "":
		return p
	case p == "~":
		return home
	case strings.HasPrefix(p, "~/"):
		return filepath.Join(home, p[2:])
	}
	return p
}
