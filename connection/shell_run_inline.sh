# shellcheck shell=sh disable=SC2154,SC2034,SC1091
# Runs an inline probe (Probe.Inline) in the persistent shell itself: no
# subshell, no fork; protocol.go specifies the protocol. Go sends this file
# without this header (every line up to the first empty one) after writing
# the probe's script to $__opsmop_D/s, appends "; unset VARS" (the probe's
# Vars) to its line, then sends shell_frame.sh. stdin is /dev/null.
#
# SC2154: the __opsmop_ variables are the persistent shell's.
# SC2034: __opsmop_r is read by shell_frame.sh.
# SC1091: the sourced file s is written at run time.

{ . "$__opsmop_D/s"; } </dev/null; __opsmop_r=$?
