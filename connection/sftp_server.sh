# shellcheck shell=sh
# Starts the host's sftp-server with umask 077, so that a file it creates
# is 0600 from the first instant (pkg/sftp cannot pass a mode on open). Go
# runs this file without this header (every line up to the first empty
# one) with sh -c, under sudo when the handle uses sudo, so SFTP writes as
# the become-user. One line: the command line passes through the login
# shell, which need not be POSIX (tcsh rejects a newline inside quotes).

umask 077; for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server; do if [ -x "$p" ]; then exec "$p"; fi; done; echo "opsmop: no sftp-server binary found" >&2; exit 127
