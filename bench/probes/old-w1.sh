# W1's 20 probes as opsmop sent them before the probe changes of commit
# 0bd4bdb (the probe text of providers/util.go statScript/hashScript/
# blobScript, file.go and line.go at 5f9a01c), each in a subshell as the persistent shell
# runs it, without the framing. docs/benchmarks.md ("Profile") times this
# file inside a lab host with `sh old-w1.sh >/dev/null` against
# proposed-w1.sh.
(
p=/srv/bench1
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
)
(
p=/srv/bench2
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
)
(
p=/srv/bench3
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
)
(
p=/srv/bench4
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
)
(
p=/srv/bench5
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
)
(
p=/srv/bench1/f1.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench1/f2.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench2/f3.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench2/f4.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench3/f5.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench3/f6.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench4/f7.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench4/f8.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench5/f9.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/srv/bench5/f10.conf
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
if [ -r "$p" ]; then
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$p" | cut -d' ' -f1)
elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 < "$p" | sed 's/^.*= *//')
elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < "$p" | cut -d' ' -f1)
else s=; fi
printf 'sha256=%s\n' "$s"
else echo readable=0; fi
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if [ "$size" -le 65536 ] && [ $(($(tr -d '\000' < "$p" | wc -c))) -eq "$size" ]; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/etc/hosts
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
[ -r "$p" ] || echo readable=0
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if true; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/etc/hosts
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
[ -r "$p" ] || echo readable=0
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if true; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/etc/hosts
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
[ -r "$p" ] || echo readable=0
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if true; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/etc/hosts
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
[ -r "$p" ] || echo readable=0
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if true; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
(
p=/etc/hosts
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then stat -c 'stat=%a %u %g %U %G' -- "$p" 2>/dev/null || echo stat=error; fi
if [ "$t" = file ]; then
[ -r "$p" ] || echo readable=0
if [ -r "$p" ]; then
size=$(($(wc -c < "$p")))
printf 'size=%s\n' "$size"
if true; then printf 'blob=%s\n' "$size"; head -c "$size" < "$p"; fi
fi
fi
)
