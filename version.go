package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// versionText is opsmop's version with where the binary came from, e.g.
// "0.1.0 (commit 1a2b3c4d5e6f, modified; go1.26.8 linux/amd64)": the
// release number (Version), the VCS revision the binary was built from
// (first 12 hex digits; "modified" when the work tree had uncommitted
// changes; "commit unknown" when the build recorded none, as with go run,
// go test or -buildvcs=false) and the Go version that built it. bi is the
// build info (debug.ReadBuildInfo; nil when unavailable).
func versionText(bi *debug.BuildInfo) string {
	goVersion := runtime.Version()
	rev, modified := "", false
	if bi != nil {
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	var b strings.Builder
	b.WriteString(Version + " (")
	switch {
	case rev == "":
		b.WriteString("commit unknown")
	case len(rev) > 12:
		b.WriteString("commit " + rev[:12])
	default:
		b.WriteString("commit " + rev)
	}
	if modified {
		b.WriteString(", modified")
	}
	b.WriteString("; " + goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH + ")")
	return b.String()
}

// buildInfo is this binary's build info (nil when it has none).
func buildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}
