package shell

// Chown returns the command, without its file operands, that sets the
// owner and/or group of files: "chown [-R] -- OWNER[:GROUP]" when owner is
// set, "chgrp [-R] -- GROUP" when only group is, and "" when neither is.
// Owner and group are user or group names or numeric ids, each passed
// through Quote. The caller appends the files as sh words (paths passed
// through Quote, or an expansion such as "$tmp"). The "--" comes before
// the name, so neither the name nor a file is read as an option, whether
// or not the host's getopt permutes its arguments.
func Chown(owner, group string, recurse bool) string {
	cmd, spec := "chown", owner
	switch {
	case owner != "" && group != "":
		spec = owner + ":" + group
	case owner == "" && group != "":
		cmd, spec = "chgrp", group
	case owner == "":
		return ""
	}
	if recurse {
		cmd += " -R"
	}
	return cmd + " -- " + Quote(spec)
}
