#!/bin/sh
# SELinux stand-in for lab hosts (the lab kernel has no SELinux): one
# script installed under the names selinuxenabled, chcon, restorecon and
# ls (a wrapper: only `ls -Zd -- PATH...` is emulated, anything else runs the
# real ls), dispatched on the name it is called by.
#
# A path's context is kept in its user.selinux_standin extended attribute
# (so it follows the inode through a rename, as security.selinux does); a
# path without one has its parent directory's context, as a new file gets
# its directory's type under a real policy (/ has system_u:object_r:root_t:s0).
# restorecon sets the first context of $ETC/file_contexts ("REGEX CONTEXT"
# lines, the regex matched against the whole absolute path) that matches,
# else system_u:object_r:default_t:s0. selinuxenabled exits 0 when
# $ETC/enabled exists. Every call is appended to $LOG (name and arguments).
# SELINUX_STANDIN_ETC and SELINUX_STANDIN_LOG override ETC and LOG (a test
# on this machine; /dev/null as LOG for a test's own calls).
ETC=${SELINUX_STANDIN_ETC:-/etc/selinux-standin}
LOG=${SELINUX_STANDIN_LOG:-/var/log/selinux-standin.log}
PY=/usr/bin/python3
name=${0##*/}
printf '%s %s\n' "$name" "$*" >>"$LOG" 2>/dev/null || :

getx() { "$PY" -c 'import os,sys
try: sys.stdout.write(os.getxattr(sys.argv[1], "user.selinux_standin").decode())
except OSError: sys.exit(1)' "$1" 2>/dev/null; }
setx() { "$PY" -c 'import os,sys; os.setxattr(sys.argv[1], "user.selinux_standin", sys.argv[2].encode())' "$1" "$2"; }

# context PATH prints PATH's context (PATH must exist).
context() {
	c=$(getx "$1") && { printf '%s' "$c"; return; }
	d=$(dirname -- "$1")
	if [ "$d" = "$1" ]; then printf 'system_u:object_r:root_t:s0'; return; fi
	context "$d"
}

# default PATH prints the policy default context of PATH.
default() {
	abs=$(realpath -m -- "$1")
	if [ -f "$ETC/file_contexts" ]; then
		while read -r re ctx; do
			[ -n "$re" ] || continue
			if printf '%s\n' "$abs" | grep -Eqx -- "$re"; then printf '%s' "$ctx"; return; fi
		done <"$ETC/file_contexts"
	fi
	printf 'system_u:object_r:default_t:s0'
}

case $name in
selinuxenabled)
	[ -e "$ETC/enabled" ] ;;
chcon)
	ref="" u="" r="" t="" l=""
	while [ $# -gt 0 ]; do
		case $1 in
		--reference=*) ref=${1#--reference=} ;;
		-u) u=$2; shift ;;
		-r) r=$2; shift ;;
		-t) t=$2; shift ;;
		-l) l=$2; shift ;;
		--) shift; break ;;
		-*) echo "chcon stand-in: option $1 not emulated" >&2; exit 2 ;;
		*) break ;;
		esac
		shift
	done
	[ -e "$ETC/enabled" ] || { echo "chcon: can't apply partial context to unlabeled file" >&2; exit 1; }
	[ $# -gt 0 ] || { echo "chcon: missing operand" >&2; exit 1; }
	if [ -n "$ref" ]; then
		[ -e "$ref" ] || { echo "chcon: failed to get security context of '$ref': No such file or directory" >&2; exit 1; }
		new=$(context "$ref")
	fi
	for f do
		[ -e "$f" ] || { echo "chcon: cannot access '$f': No such file or directory" >&2; exit 1; }
		if [ -z "$ref" ]; then
			cur=$(context "$f")
			cu=${cur%%:*} rest=${cur#*:}; cr=${rest%%:*} rest=${rest#*:}; ct=${rest%%:*}; cl=${rest#*:}
			new=${u:-$cu}:${r:-$cr}:${t:-$ct}:${l:-$cl}
		fi
		setx "$f" "$new" || exit 1
	done ;;
restorecon)
	[ "${1-}" = -- ] && shift
	[ -e "$ETC/enabled" ] || { echo "restorecon: SELinux: Could not get canonical path for $1 restorecon: Operation not supported." >&2; exit 255; }
	for f do
		[ -e "$f" ] || { echo "restorecon: lstat($f) failed: No such file or directory" >&2; exit 255; }
		setx "$f" "$(default "$f")" || exit 255
	done ;;
ls)
	if [ "${1-}" = -Zd ]; then
		shift
		[ "${1-}" = -- ] && shift
		rc=0
		for f do
			# As ls does: a missing name is reported, the others listed.
			if ! [ -e "$f" ] && ! [ -L "$f" ]; then echo "ls: cannot access '$f': No such file or directory" >&2; rc=2; continue; fi
			if [ -e "$ETC/enabled" ]; then printf '%s %s\n' "$(context "$f")" "$f"; else printf '? %s\n' "$f"; fi
		done
		exit $rc
	fi
	for real in /usr/bin/ls /bin/ls; do
		[ -x "$real" ] && exec "$real" "$@"
	done
	echo "ls stand-in: no real ls" >&2; exit 2 ;;
*)
	echo "selinux stand-in: called as $name" >&2; exit 2 ;;
esac
