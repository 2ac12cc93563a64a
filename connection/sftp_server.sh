# shellcheck shell=sh disable=SC2154
# Starts the host's sftp-server with umask 077, so that a file it creates
# is 0600 from the first instant (pkg/sftp cannot pass a mode on open).
# Go sends the line __opsmop_M=<random marker>, then this file without
# this header (every line up to the first empty one), through the login
# shell as one shell.LoginLine (under sudo when the handle uses sudo, so
# SFTP writes as the become-user). It is kept on one line
# (TestScriptFiles checks that), though LoginLine would carry newlines.
#
# Login dotfiles may print anything on stdout before this script runs,
# which would corrupt the SFTP stream: so it prints the marker with "-go"
# and a newline just before it execs sftp-server, and Go skips everything
# up to that. The marker printed differs from its text on the command
# line (the "-go"), so not even an echo of the command line can fake it.
# With no sftp-server binary it prints the marker with "-none" instead.
#
# SC2154: __opsmop_M is set by the line Go sends before this file.

umask 077; for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server /usr/local/libexec/sftp-server /usr/local/lib/sftp-server /usr/sbin/sftp-server "$(command -v sftp-server 2>/dev/null)"; do if [ -f "$p" ] && [ -x "$p" ]; then printf '%s-go\n' "$__opsmop_M"; exec "$p"; fi; done; printf '%s-none\n' "$__opsmop_M"; echo "opsmop: no sftp-server binary found (looked in /usr/lib/openssh, /usr/libexec/openssh, /usr/lib/ssh, /usr/libexec/ssh, /usr/libexec, /usr/lib, /usr/local/libexec, /usr/local/lib, /usr/sbin and PATH)" >&2; exit 127
