# shellcheck shell=sh disable=SC2154,SC2059
# Runs one command through the login shell, for hosts where opsmop's
# persistent shell cannot run (exec.go). Go sends this file without this
# header (every line up to the first empty one), behind the assignments
# __opsmop_S and __opsmop_E (random start and end markers), __opsmop_c
# (the command's script), __opsmop_h (1 when there is stdin) and
# __opsmop_f (the stdin as a printf format: \ as \\, % as %%, NUL as
# \000, a leading - as \055), all of it as one shell.LoginLine: nothing is
# read from the session's stdin, which a login shell may not pass on.
#
# It prints the start marker on stdout and stderr, runs the script in a
# subshell (stdin from the format, else /dev/null), then prints the end
# marker with the exit status and a newline on stdout and the end marker
# on stderr. Go counts the command as run only when it sees both markers
# on stdout: a login shell that prints an error and exits 0 proves
# nothing.
#
# SC2154: the __opsmop_ variables are set by the assignments Go sends.
# SC2059: __opsmop_f is a printf format on purpose (any bytes, NUL too).

printf %s "$__opsmop_S"; printf %s "$__opsmop_S" >&2
if [ "$__opsmop_h" = 1 ]; then
  printf "$__opsmop_f" | (eval "unset __opsmop_S __opsmop_E __opsmop_h __opsmop_f __opsmop_c
$__opsmop_c")
else
  (eval "unset __opsmop_S __opsmop_E __opsmop_h __opsmop_f __opsmop_c
$__opsmop_c") </dev/null
fi
printf '%s%s\n' "$__opsmop_E" "$?"; printf %s "$__opsmop_E" >&2
