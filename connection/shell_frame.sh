# shellcheck shell=sh disable=SC2154
# The end frame of a command of the persistent shell; protocol.go specifies
# the protocol. Go sends this file without this header (every line up to
# the first empty one) after each command's run line (shell_run.sh,
# shell_run_stdin.sh or shell_run_inline.sh), which sets __opsmop_r to the
# command's exit status: it prints K "R" status "\n" on stdout and K "E"
# on stderr.
#
# SC2154: __opsmop_K and __opsmop_r are the persistent shell's.

printf '%sR%s\n' "$__opsmop_K" "$__opsmop_r"; printf '%sE' "$__opsmop_K" >&2
