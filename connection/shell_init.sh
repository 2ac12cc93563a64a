# shellcheck shell=sh disable=SC2154,SC1091
# The persistent shell's start-up script; protocol.go specifies the
# protocol. Go sends the line __opsmop_K=<sentinel> and then this file
# without this header (every line up to the first empty one).
#
# It makes the private directory __opsmop_D (0700, files s, i and u in it)
# in the first place that works: mktemp -d's default, then $TMPDIR, /tmp,
# /var/tmp, /dev/shm and $HOME, each tried by creating the directory and
# writing its files (a directory can be there and still not writable, or
# full). When none works it prints the failure frame K "X" reason "\n" on
# stdout (K "X" on stderr) and exits: Go fails the host with the reason
# (*ShellStartError) and sends nothing else. Then it makes the directory's
# form quoted for eval, __opsmop_Q; traps EXIT to source the
# registered removals in u and remove the directory; defines the `kill`
# function commands run with (__opsmop_cmd finds the running command's
# subshell, __opsmop_tree its descendants); sets __opsmop_se to 1 when
# SELinux is on (selinuxenabled exits 0), else 0, with builtins alone where
# there is no selinuxenabled (the write path reads it: selinux.go); then
# prints the init frame: K "I" pid "\n" on stdout, K "I" on stderr.
#
# SC2154: __opsmop_K is set by the line Go sends before this file.
# SC1091: the sourced file u is written at run time.

__opsmop_mk() {
  case $1 in
  '') return 1 ;;
  -) __opsmop_D=$(mktemp -d 2>/dev/null) ;;
  *) __opsmop_D=$(mktemp -d "$1/opsmop.XXXXXXXXXX" 2>/dev/null) || { __opsmop_D=$1/opsmop.$$; (umask 077; mkdir -- "$__opsmop_D") 2>/dev/null; } ;;
  esac || return 1
  case $__opsmop_D in
  /*) (umask 077; printf x >"$__opsmop_D/s" && : >"$__opsmop_D/s" && : >"$__opsmop_D/i" && : >"$__opsmop_D/u") 2>/dev/null && return 0 ;;
  esac
  rm -rf -- "$__opsmop_D" 2>/dev/null; return 1
}
for __opsmop_x in - "${TMPDIR-}" /tmp /var/tmp /dev/shm "${HOME-}"; do
  __opsmop_mk "$__opsmop_x" && break
  __opsmop_D=
done
unset -f __opsmop_mk
if [ -z "$__opsmop_D" ]; then
  printf '%sX%s\n' "$__opsmop_K" "no writable temp directory among mktemp -d, TMPDIR (${TMPDIR-unset}), /tmp, /var/tmp, /dev/shm and HOME (${HOME-unset})"
  printf '%sX' "$__opsmop_K" >&2
  exit 1
fi
trap '. "$__opsmop_D/u"; rm -rf "$__opsmop_D"' EXIT
__opsmop_x=$__opsmop_D; __opsmop_Q=
while :; do case $__opsmop_x in
*\'*) __opsmop_Q=$__opsmop_Q${__opsmop_x%%\'*}\'\\\'\'; __opsmop_x=${__opsmop_x#*\'};;
*) __opsmop_Q=$__opsmop_Q$__opsmop_x; break;;
esac; done; unset __opsmop_x
__opsmop_cmd() {
  read -r __opsmop_l 2>/dev/null </proc/self/stat || return 1
  __opsmop_s=${__opsmop_l%% *}
  while :; do
    __opsmop_m=${__opsmop_l%% *}
    __opsmop_l=${__opsmop_l##*\) }; __opsmop_l=${__opsmop_l#* }; __opsmop_l=${__opsmop_l%% *}
    [ "$__opsmop_l" = "$$" ] && return 0
    case $__opsmop_l in '' | 0 | 1 | *[!0-9]*) return 1 ;; esac
    read -r __opsmop_l 2>/dev/null <"/proc/$__opsmop_l/stat" || return 1
  done
}
__opsmop_tree() {
  __opsmop_t=" $__opsmop_m " __opsmop_f=$-
  set +f
  if [ -e "/proc/$__opsmop_m/task/$__opsmop_m/children" ]; then
    __opsmop_q="$__opsmop_m "
    while [ -n "$__opsmop_q" ]; do
      __opsmop_x=${__opsmop_q%% *}; __opsmop_q=${__opsmop_q#* }
      for __opsmop_d in /proc/"$__opsmop_x"/task/*/children; do
        __opsmop_l=
        read -r __opsmop_l 2>/dev/null <"$__opsmop_d" || :
        while [ -n "$__opsmop_l" ]; do
          __opsmop_x=${__opsmop_l%% *}; __opsmop_l=${__opsmop_l#"$__opsmop_x"}; __opsmop_l=${__opsmop_l# }
          case $__opsmop_t in *" $__opsmop_x "*) ;; *) __opsmop_t="$__opsmop_t$__opsmop_x " __opsmop_q="$__opsmop_q$__opsmop_x " ;; esac
        done
      done
    done
  else
    __opsmop_n=1
    while [ "$__opsmop_n" = 1 ]; do
      __opsmop_n=0
      for __opsmop_d in /proc/[0-9]*; do
        case $__opsmop_t in *" ${__opsmop_d#/proc/} "*) continue ;; esac
        read -r __opsmop_l 2>/dev/null <"$__opsmop_d/stat" || continue
        __opsmop_l=${__opsmop_l##*\) }; __opsmop_l=${__opsmop_l#* }
        case $__opsmop_t in *" ${__opsmop_l%% *} "*) __opsmop_t="$__opsmop_t${__opsmop_d#/proc/} " __opsmop_n=1 ;; esac
      done
    done
  fi
  case $__opsmop_f in *f*) set -f ;; esac
  case $__opsmop_t in *" $__opsmop_s "*) __opsmop_t="${__opsmop_t%% "$__opsmop_s" *} ${__opsmop_t#* "$__opsmop_s" }$__opsmop_s " ;; esac
  :
}
kill() {
  __opsmop_k=$# __opsmop_p='' __opsmop_m=''
  while [ "$__opsmop_k" -gt 0 ]; do
    case $__opsmop_p/$1 in
    -s/* | -n/* | /-*) set -- "$@" "$1" ;;
    */"$$" | */-"$$" | */0)
      if [ -z "$__opsmop_m" ] && ! __opsmop_cmd; then
        printf 'kill: %s: the command has ended (in opsmop commands $$ is the persistent shell)\n' "$1" >&2
        unset __opsmop_k __opsmop_p __opsmop_m __opsmop_s __opsmop_l
        return 1
      fi
      if [ "$1" = "$$" ]; then
        set -- "$@" "$__opsmop_m"
      else
        __opsmop_tree
        __opsmop_t=${__opsmop_t# }
        while [ -n "$__opsmop_t" ]; do set -- "$@" "${__opsmop_t%% *}"; __opsmop_t=${__opsmop_t#* }; done
      fi ;;
    *) set -- "$@" "$1" ;;
    esac
    __opsmop_p=$1; shift; __opsmop_k=$((__opsmop_k - 1))
  done
  unset __opsmop_k __opsmop_p __opsmop_m __opsmop_s __opsmop_l __opsmop_t __opsmop_n __opsmop_f __opsmop_d __opsmop_q __opsmop_x
  command kill "$@"
}
__opsmop_se=0
if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled </dev/null >/dev/null 2>&1; then __opsmop_se=1; fi
printf '%sI%s\n' "$__opsmop_K" "$$"
printf '%sI' "$__opsmop_K" >&2
