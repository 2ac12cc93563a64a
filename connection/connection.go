// Package connection runs commands and writes files on targets: over SSH
// (one pooled connection and one persistent shell per host) or locally.
package connection

import "os"

// Result is what one command on a target produced.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// UploadOptions says how an uploaded file is to be left on the target.
// Zero values mean "do not set": Mode 0 leaves the default (0644 for a new
// file, the old mode for a replaced one is NOT kept: callers pass the mode
// they want), an empty Owner or Group leaves the writer's. Owner and Group
// are names or numeric ids; when both are numeric, SSH hosts set them over
// SFTP instead of running chown.
type UploadOptions struct {
	Mode  os.FileMode
	Owner string
	Group string
	// Progress, if set, is called with the bytes written so far.
	Progress func(written, total int64)
}
