# shellcheck shell=sh disable=SC2154,SC2086
# The kill helper's script: it kills the running command of a persistent
# shell with all its descendants (see watchdog.go). Go runs it with sh -c
# in a session of its own as the shell's user (sudo included), through the
# login shell as a shell.LoginLine, as the lines __pshell=<the persistent
# shell's pid> and __opsmop_ok=<a random marker> followed by this file
# without this header (every line up to the first empty one). Its last
# line prints the marker and "-killed": Go takes the kill as done only
# when it sees that.
#
# __opsmop_kt PID... stops the processes and all their descendants (found
# through /proc with builtins, repeated until no new one appears, so a
# forking command cannot outrun it), then kills them; daemons reparented
# away are not descendants and survive. The script kills every child of
# the persistent shell (the running command's subshell) that way, then the
# process group of each child, in case the command made itself a group
# leader (`exec setsid ...`) whose members left the tree.
#
# SC2154: __pshell and __opsmop_ok are set by the lines Go sends before
# this file.
# SC2086: the unquoted expansions split /proc/PID/stat fields and pid lists
# on purpose.

__opsmop_kt() {
  __k=" $* "; __n=1
  for __p in "$@"; do kill -s STOP "$__p" 2>/dev/null; done
  while [ "$__n" = 1 ]; do
    __n=0
    for __d in /proc/[0-9]*; do
      __p=${__d#/proc/}
      case "$__k" in *" $__p "*) continue;; esac
      read -r __l 2>/dev/null <"$__d/stat" || continue
      set -- ${__l##*\) }
      case "$__k" in *" $2 "*) __k="$__k$__p "; __n=1; kill -s STOP "$__p" 2>/dev/null;; esac
    done
  done
  for __p in $__k; do kill -s KILL "$__p" 2>/dev/null; done
}
__c=
for __d in /proc/[0-9]*; do
  read -r __l 2>/dev/null <"$__d/stat" || continue
  set -- ${__l##*\) }
  [ "$2" = "$__pshell" ] && __c="$__c ${__d#/proc/}"
done
[ -n "$__c" ] && __opsmop_kt $__c
for __p in $__c; do kill -s KILL -- "-$__p" 2>/dev/null; done
printf '%s-killed\n' "$__opsmop_ok"
