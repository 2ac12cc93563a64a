#!/bin/sh
# systemctl stand-in for lab hosts (no systemd as pid 1): unit files under
# /etc/systemd/system and /usr/lib/systemd/system, enablement and masking as
# symlinks (as systemd makes them), the active state under $STATE, and, as
# systemd does, NeedDaemonReload=yes when a unit file's inode or mtime
# differs from what the last daemon-reload recorded (or the file appeared
# since); every invocation is appended to $LOG.
STATE=/var/lib/systemctl-standin
LOG=/var/log/systemctl-standin.log
ETC=/etc/systemd/system
WANTS=$ETC/multi-user.target.wants
mkdir -p "$STATE/active" "$STATE/loaded" "$WANTS"
printf '%s\n' "$*" >>"$LOG"

unit() { case $1 in *.service|*.socket|*.timer|*.target) printf '%s' "$1" ;; *) printf '%s.service' "$1" ;; esac; }
# file prints the unit's file, if any (not a mask).
file() {
	for d in "$ETC" /run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
		if [ -f "$d/$1" ] && ! [ -L "$d/$1" ]; then printf '%s' "$d/$1"; return 0; fi
	done
	return 1
}
masked() { [ -L "$ETC/$1" ] && [ "$(readlink "$ETC/$1")" = /dev/null ]; }
loadstate() {
	if masked "$1"; then echo masked; elif file "$1" >/dev/null; then echo loaded; else echo not-found; fi
}
needreload() {
	f=$(file "$1") || { echo no; return; }
	if [ "$(stat -c '%i %y' "$f")" = "$(cat "$STATE/loaded/$1" 2>/dev/null)" ]; then echo no; else echo yes; fi
}
static() { f=$(file "$1") && ! grep -q '^WantedBy=' "$f"; }
startable() {
	if masked "$1"; then echo "Failed to start $1: Unit $1 is masked." >&2; exit 1; fi
	if ! file "$1" >/dev/null; then echo "Failed to start $1: Unit $1 not found." >&2; exit 5; fi
}

verb=$1
shift
case $verb in
show)
	prop="" value=""
	while [ $# -gt 1 ]; do
		case $1 in -p) prop=$2; shift 2 ;; --value) value=1; shift ;; *) break ;; esac
	done
	u=$(unit "$1")
	case $prop in
	LoadState) v=$(loadstate "$u") ;;
	NeedDaemonReload) v=$(needreload "$u") ;;
	ActiveState) if [ -e "$STATE/active/$u" ]; then v=active; else v=inactive; fi ;;
	*) echo "stand-in: show -p $prop not emulated" >&2; exit 2 ;;
	esac
	if [ -n "$value" ]; then echo "$v"; else echo "$prop=$v"; fi ;;
is-active)
	u=$(unit "$1")
	if [ -e "$STATE/active/$u" ]; then echo active; else echo inactive; exit 3; fi ;;
is-enabled)
	u=$(unit "$1")
	if masked "$u"; then echo masked; exit 1; fi
	if ! file "$u" >/dev/null; then echo "Failed to get unit file state for $u: No such file or directory" >&2; exit 1; fi
	if [ -L "$WANTS/$u" ]; then echo enabled
	elif static "$u"; then echo static
	else echo disabled; exit 1; fi ;;
start|restart)
	u=$(unit "$1"); startable "$u"
	echo "$verb $(date +%s%N)" >"$STATE/active/$u" ;;
reload)
	u=$(unit "$1"); startable "$u"
	if ! [ -e "$STATE/active/$u" ]; then echo "Failed to reload $u: Unit $u is not active." >&2; exit 1; fi ;;
stop)
	u=$(unit "$1"); rm -f "$STATE/active/$u" ;;
enable)
	u=$(unit "$1")
	if masked "$u"; then echo "Failed to enable unit: Unit file $ETC/$u is masked." >&2; exit 1; fi
	f=$(file "$u") || { echo "Failed to enable unit: Unit file $u does not exist." >&2; exit 1; }
	if static "$u"; then echo "The unit files have no installation config (WantedBy=...)." >&2; exit 0; fi
	ln -sf "$f" "$WANTS/$u" ;;
disable)
	u=$(unit "$1"); rm -f "$WANTS/$u" ;;
mask)
	u=$(unit "$1")
	if [ -f "$ETC/$u" ] && ! [ -L "$ETC/$u" ]; then echo "Failed to mask unit: File $ETC/$u already exists." >&2; exit 1; fi
	ln -sf /dev/null "$ETC/$u" ;;
unmask)
	u=$(unit "$1"); if masked "$u"; then rm -f "$ETC/$u"; fi ;;
daemon-reload)
	rm -f "$STATE/loaded/"*
	for d in "$ETC" /run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
		for f in "$d"/*.service; do
			if [ -f "$f" ] && ! [ -L "$f" ]; then stat -c '%i %y' "$f" >"$STATE/loaded/${f##*/}"; fi
		done
	done ;;
*) echo "stand-in: systemctl $verb not emulated" >&2; exit 2 ;;
esac
exit 0
