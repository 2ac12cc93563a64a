# shellcheck shell=sh disable=SC2154,SC2034
# Runs a command of the persistent shell in a subshell; protocol.go
# specifies the protocol. Go sends this file without this header (every
# line up to the first empty one) after writing the command's script to
# $__opsmop_D/s, then shell_frame.sh.
#
# The subshell unsets the persistent shell's variables and sources the
# script (through eval: __opsmop_Q is the directory quoted, so its path
# needs no variable once they are gone), with stdin from /dev/null. The shell
# waits for it and sets __opsmop_r to its status; wait's stderr is
# discarded (dash reports "Killed" there for a job ended by a signal).
#
# SC2154: the __opsmop_ variables are the persistent shell's.
# SC2034: __opsmop_r is read by shell_frame.sh.

(eval "unset __opsmop_K __opsmop_D __opsmop_Q __opsmop_j __opsmop_r __opsmop_x __opsmop_y __opsmop_u; . '$__opsmop_Q/s'") </dev/null &
__opsmop_j=$!; wait "$__opsmop_j" 2>/dev/null; __opsmop_r=$?
