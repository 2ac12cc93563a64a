package providers

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/policy"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/resources/*.md from the spec structs and examples")

// typeDocs holds, per type, the notes and examples of its docs page. The
// key table comes from the spec struct's tags (policy.DocKeys).
var typeDocs = map[string]struct{ notes, toml, yaml string }{
	"file": {
		notes: `- Exactly one of ` + "`content`, `src` and `template`" + ` gives the contents; with none, only the attributes of an existing file are managed.
- Contents are compared by sha256 computed **on the host** (sha256sum, else ` + "`openssl dgst -sha256`, else `shasum -a 256`" + `; a tool that fails gives way to the next) against the local sha256, so an unchanged file is never sent again. For the diff the same probe returns the current contents when the file is at most 64 KiB and has no NUL byte (not for ` + "`sensitive`" + ` files): one round trip per file.
- On a host where none of these tools works, the same probe reads the file back instead, when its size is the wanted size (a file of another size differs anyway), and opsmop hashes it itself: check shows the real change and diff, apply converges, and drift is found, at the cost of the file's size in transfer on every check. That works up to 64 MiB of wanted contents; above, check fails on such a host before anything is written, naming the host and the path and saying what to install (coreutils for sha256sum, openssl, or perl for shasum). A tool that prints something other than a sha256 fails the check.
- Replacing contents is atomic: the host writes a temp file in the same directory, sets mode/owner/group, then renames it. Without ` + "`mode`/`owner`/`group`" + ` the existing file's are kept.
- Attribute-only changes use chmod/chown/chgrp; nothing is uploaded.
- A symlink at ` + "`path`" + ` is replaced by a regular file (the change shows ` + "`type: link -> file`" + `); a directory, device, fifo or socket there is an error.
- Binary files or files over 64 KiB get no diff; the change's message says so.` + "\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: more than one of `content`, `src` and `template`; any of them with `state = \"absent\"`; a `path` that is not absolute; a `mode` that is not octal (`\"999\"`); an `owner` or `group` that is not a name or numeric id; a `src` or `template` that does not exist (relative to the policy directory), is not a readable regular file, or (a template) does not parse. A value written as a template (`{{ ... }}`) is checked once rendered for each host.\n- A `template` is rendered once per host and run: the contents the check diffs are the ones apply uploads and the re-check after apply compares, so a template with a changing value (`{{ now.UnixNano }}`) converges (and changes again on the next run)." + "\n- `validate`, as Ansible's: a command that must accept the new contents before they replace the file, e.g. `validate = \"visudo -cf %s\"`. Apply uploads the temp file (mode, owner and group already set) and runs the command on the host, `%s` replaced by the temp file's path **quoted by opsmop** (write `%s` bare, never in quotes; `%%` is a literal `%`), through `sh` (so `&&` and pipes work, unlike Ansible's), as the become user under sudo, stdin empty, in a subshell (an `exit` or a syntax error in it ends only the command). Exit status 0: the temp file is renamed into place. Anything else: the temp file is removed, the old file stays exactly as it was (with `backup = true`, the copy made before the upload is removed too), and the resource fails with the exit status, the command as run and the last 20 lines of its stderr and stdout (not with `sensitive = true`: visudo, for one, quotes the offending line). The temp file has a hidden name with a dot in the file's directory (`.opsmop-RANDOM.tmp` over SSH), which sudo's `#includedir` and most `conf.d` loaders skip; over SSH it is removed even when the connection dies meanwhile.\n- Check never runs `validate`: check writes nothing on the host, and the command needs the file there. The change of a file with `validate` carries the message `not validated yet: apply runs validate (...) on the new contents before they replace the file` (shown as `note:` under the change, and `change.message` of the `--json` events); contents the command refuses stay a change on every check until they are fixed. As in Ansible, `validate` runs only when the contents are replaced: not for a mode/owner/group-only change, not when the file is already as wanted.\n- `opsmop validate` reports, at the `validate` key's line: no `%s`; a `%s` inside quotes; a `%` followed by anything but `s` or `%`; an unterminated quote; `validate` with `state = \"absent\"` or without `content`, `src` or `template`." + selinuxDocNote("file"), // selinux_test.go
		toml: `[[roles.resources]]
type = "file"
path = "/etc/motd"
content = "Authorized use only.\n"
mode = "0644"
owner = "root"
group = "root"

[[roles.resources]]
type = "file"
path = "/etc/app/secret.key"
src = "files/secret.key"
mode = "0600"
backup = true
sensitive = true

[[roles.resources]]
type = "file"
path = "/etc/sudoers.d/app"
content = "app ALL=(root) NOPASSWD: /usr/bin/systemctl restart app\n"
mode = "0440"
owner = "root"
group = "root"
validate = "visudo -cf %s"

[[roles.resources]]
type = "file"
path = "/etc/old.conf"
state = "absent"` + selinuxDocTOML,
		yaml: `- type: file
  path: /etc/motd
  content: "Authorized use only.\n"
  mode: "0644"
  owner: root
  group: root
- type: file
  path: /etc/app/secret.key
  src: files/secret.key
  mode: "0600"
  backup: true
  sensitive: true
- type: file
  path: /etc/sudoers.d/app
  content: "app ALL=(root) NOPASSWD: /usr/bin/systemctl restart app\n"
  mode: "0440"
  owner: root
  group: root
  validate: visudo -cf %s
- type: file
  path: /etc/old.conf
  state: absent` + selinuxDocYAML,
	},
	"template": {
		notes: `- ` + "`template`" + ` is shorthand for a ` + "`file`" + ` with ` + "`template = SRC`" + `: everything said there (remote sha256, or the contents read back on a host without a hash tool; diff; atomic upload; kept attributes) applies.
- The template is rendered locally with the host's variables; a template error names the template file and line.` + "\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: an empty `src`; a `src` that does not exist (relative to the policy directory), is not a readable regular file or does not parse; a `path` that is not absolute; a `mode` that is not octal; an `owner` or `group` that is not a name or numeric id. A value written as a template (`{{ ... }}`) is checked once rendered for each host.\n- The template is rendered once per host and run: the contents the check diffs are the ones apply uploads and the re-check after apply compares, so a template with a changing value (`{{ now.UnixNano }}`) converges (and changes again on the next run)." + "\n- `validate` (e.g. `validate = \"nginx -t -c %s\"`) checks the rendered contents on the host before they replace the file, exactly as for `file`: the temp file's path quoted by opsmop in place of `%s`, run as the become user, a refusal leaves the old file and fails with the command's output; check never runs it (its change's message says that apply will). `opsmop validate` reports a `validate` without `%s`, with `%s` in quotes, with another `%` sequence or an unterminated quote at the key's line." + selinuxDocNote("template"), // selinux_test.go
		toml: `[[roles.resources]]
type = "template"
src = "templates/app.conf.tmpl"
path = "/etc/app/app.conf"
mode = "0640"
owner = "root"
group = "app"
notify = ["restart app"]`,
		yaml: `- type: template
  src: templates/app.conf.tmpl
  path: /etc/app/app.conf
  mode: "0640"
  owner: root
  group: app
  notify: [restart app]`,
	},
	"directory": {
		notes: `- Missing parents are created (` + "`mkdir -p`" + `).
- With ` + "`recurse`" + `, the probe also asks ` + "`find`" + ` whether anything beneath has another owner, group or mode; if so chown -R / chgrp -R / chmod -R are applied. Note that ` + "`mode`" + ` then applies to files as well as directories.
- ` + "`state = \"absent\"`" + ` removes the directory and everything in it (` + "`rm -rf`" + `); ` + "`/`" + ` is always refused. A file at the path is an error, never removed.` + "\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `path` that is not absolute; `path = \"/\"` with `state = \"absent\"`; a `mode` that is not octal; an `owner` or `group` that is not a name or numeric id. A value written as a template (`{{ ... }}`) is checked once rendered for each host." + selinuxDocNote("directory"), // selinux_test.go
		toml: `[[roles.resources]]
type = "directory"
path = "/srv/app/releases"
mode = "0755"
owner = "app"
group = "app"

[[roles.resources]]
type = "directory"
path = "/srv/app/data"
owner = "app"
group = "app"
recurse = true

[[roles.resources]]
type = "directory"
path = "/srv/old-app"
state = "absent"`,
		yaml: `- type: directory
  path: /srv/app/releases
  mode: "0755"
  owner: app
  group: app
- type: directory
  path: /srv/app/data
  owner: app
  group: app
  recurse: true
- type: directory
  path: /srv/old-app
  state: absent`,
	},
	"link": {
		notes: `- A link pointing elsewhere is replaced (` + "`ln -sfn`" + `, so a link to a directory is replaced rather than a new link created inside that directory).
- A regular file or directory at ` + "`path`" + ` is an error unless ` + "`force = true`" + `, which removes it first (recursively for a directory).
- ` + "`target`" + ` is compared exactly as written with what ` + "`readlink`" + ` reports; it may be relative (to the link's directory) and need not exist.` + "\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `path` that is not absolute or is `/`; no `target` with `state = \"present\"`; a `target` holding a newline or NUL byte. A value written as a template (`{{ ... }}`) is checked once rendered for each host." + ``,
		toml: `[[roles.resources]]
type = "link"
path = "/srv/app/current"
target = "/srv/app/releases/2024-06-01"

[[roles.resources]]
type = "link"
path = "/etc/nginx/sites-enabled/default"
state = "absent"`,
		yaml: `- type: link
  path: /srv/app/current
  target: /srv/app/releases/2024-06-01
- type: link
  path: /etc/nginx/sites-enabled/default
  state: absent`,
	},
	"line": {
		notes: `- The probe fetches the whole file; ` + "`regexp` and `insert_after`" + ` are **Go RE2** regular expressions (https://golang.org/s/re2syntax: no backreferences or lookaround) evaluated **locally** against each line (without its newline). The new contents are computed locally and uploaded atomically, keeping the file's mode, owner and group. The change carries a diff.
- ` + "`state = \"present\"`" + `: with ` + "`regexp`" + `, the LAST matching line is replaced by ` + "`line`" + ` (like Ansible's lineinfile); when nothing matches and ` + "`line`" + ` is not already in the file, it is added after the last line matching ` + "`insert_after`" + ` (end of file by default). Without ` + "`regexp`" + `, ` + "`line`" + ` is added unless an identical line exists.
- ` + "`state = \"absent\"`" + ` removes every line matching ` + "`regexp`" + ` (or, without it, every line equal to ` + "`line`" + `).
- A missing file is an error unless ` + "`create = true`" + ` (then it is created, mode 0644, holding the line); a file with NUL bytes is refused.
- When ` + "`regexp`" + ` matches no line but an identical ` + "`line`" + ` is already in the file, nothing changes: a ` + "`line`" + ` that its own ` + "`regexp`" + ` does not match is still idempotent. As with Ansible, write ` + "`regexp`" + ` so that it also matches ` + "`line`" + ` itself when several lines may match: otherwise each run replaces the next matching line.` + "\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `path` that is not absolute; a `line` holding a newline; a `regexp` or `insert_after` that does not compile; no `line` with `state = \"present\"`; neither `regexp` nor `line` with `state = \"absent\"`. A value written as a template (`{{ ... }}`) is checked once rendered for each host." + ``,
		toml: `[[roles.resources]]
type = "line"
path = "/etc/ssh/sshd_config"
regexp = '^#?PermitRootLogin\s'
line = "PermitRootLogin no"
notify = ["reload sshd"]

[[roles.resources]]
type = "line"
path = "/etc/hosts"
line = "10.0.0.5 db1"

[[roles.resources]]
type = "line"
path = "/etc/app/app.ini"
line = "workers = 4"
insert_after = '^\[main\]$'
create = true

[[roles.resources]]
type = "line"
path = "/etc/fstab"
regexp = '\s/mnt/old\s'
state = "absent"`,
		yaml: `- type: line
  path: /etc/ssh/sshd_config
  regexp: '^#?PermitRootLogin\s'
  line: PermitRootLogin no
  notify: [reload sshd]
- type: line
  path: /etc/hosts
  line: 10.0.0.5 db1
- type: line
  path: /etc/app/app.ini
  line: workers = 4
  insert_after: '^\[main\]$'
  create: true
- type: line
  path: /etc/fstab
  regexp: '\s/mnt/old\s'
  state: absent`,
	},
	"shell": {
		notes: `- Check reports ` + "`run`" + ` (with the ` + "`cmd`" + ` field) unless a guard says to skip: then the action is none and the message says why, e.g. ` + "`skipped: /opt/app/.installed exists`" + `.
- The guards are evaluated by the probe, during check: ` + "`creates`/`removes`" + ` test a path; ` + "`unless`/`onlyif`" + ` are commands run in ` + "`chdir`" + ` with ` + "`env`" + `, their output discarded. **Guard commands must only read** (they run even in ` + "`opsmop check`" + `); never put a change in them. When ` + "`chdir`" + ` does not exist yet, guard commands are not run and the command is reported as to run.
- The command runs with ` + "`sh`" + ` in ` + "`chdir`" + `, with ` + "`env`" + ` exported (values quoted, passed verbatim) and stdin from /dev/null. A non-zero exit status fails the resource, with the command, its exit status and the last lines of its stderr in the error, unless ` + "`failed_when`" + ` decides otherwise.
- ` + "`changed_when`" + ` and ` + "`failed_when`" + ` are expressions (never templated) over ` + "`rc`" + ` (integer), ` + "`stdout`" + ` and ` + "`stderr`" + ` (strings, trailing newlines removed) plus the host's variables; they must give a boolean. ` + "`changed_when`" + ` false reports the resource as unchanged (and notifies nothing).
- Without any guard a shell resource runs on every apply: add ` + "`creates`" + ` or ` + "`unless`" + ` to make it idempotent.` + "\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: an empty `cmd`; `env` names that are not variable names; `changed_when` and `failed_when` that do not compile. A value written as a template (`{{ ... }}`) is checked once rendered for each host." + ``,
		toml: `[[roles.resources]]
type = "shell"
cmd = "tar xzf /tmp/app.tgz -C /opt/app && touch /opt/app/.installed"
creates = "/opt/app/.installed"

[[roles.resources]]
type = "shell"
cmd = "./manage.py migrate --noinput"
chdir = "/srv/app/current"
env = { DJANGO_SETTINGS_MODULE = "app.settings" }
unless = "./manage.py migrate --check"
changed_when = "stdout contains 'Applying'"

[[roles.resources]]
type = "shell"
cmd = "grep -c ERROR /var/log/app.log"
failed_when = "rc > 1"
changed_when = "false"`,
		yaml: `- type: shell
  cmd: tar xzf /tmp/app.tgz -C /opt/app && touch /opt/app/.installed
  creates: /opt/app/.installed
- type: shell
  cmd: ./manage.py migrate --noinput
  chdir: /srv/app/current
  env: {DJANGO_SETTINGS_MODULE: app.settings}
  unless: ./manage.py migrate --check
  changed_when: stdout contains 'Applying'
- type: shell
  cmd: grep -c ERROR /var/log/app.log
  failed_when: rc > 1
  changed_when: "false"`,
	},
	"package": {
		notes: `- Several names are checked with one probe and installed, upgraded or removed in **one transaction** (one package manager command).
- apt: the probe runs ` + "`dpkg-query -W -f '${Package} ${Status} ${Version}\\n'`" + ` (and ` + "`apt-cache policy`" + ` for ` + "`latest`" + `); apply runs ` + "`DEBIAN_FRONTEND=noninteractive apt-get install -y -q`" + ` (keeping existing config files), preceded by ` + "`apt-get update -q`" + ` with ` + "`update_cache`" + `. dnf/yum: ` + "`rpm -q`, `dnf check-update`, `dnf install/upgrade/remove -y`" + `. apk: ` + "`apk info -e`, `apk version -l '<'`, `apk add/add -u/del`" + `. pacman: ` + "`pacman -Q`, `pacman -Qu`, `pacman -S --needed/-R`" + `.
- ` + "`version`" + ` is supported with apt (` + "`name=version`" + `), dnf and yum (` + "`name-version`" + `), not with apk or pacman.
- ` + "`src`" + ` uploads a local package file into a private temp directory on the host, installs it (apt: ` + "`apt-get install ./file.deb`" + `, so dependencies come from the repositories; dnf/yum: ` + "`dnf install FILE`" + `; apk: ` + "`apk add --allow-untrusted`" + `; pacman: ` + "`pacman -U`" + `) and removes the directory. ` + "`name`" + ` must be the package's name. For a .deb whose control member is gzip-compressed or uncompressed (` + "`dpkg-deb -Zgzip`" + `), the version inside is read locally and compared with the installed one; for xz/zstd ones only presence is checked (the change says so) unless ` + "`version`" + ` is given.
- ` + "`update_cache`" + ` refreshes the cache only when something is to be installed: a run that changes nothing never touches the network. ` + "`latest`" + ` therefore compares against the cache as it is.` + "\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a name that is not a package name (empty, starting with `-`, or holding a space or `=`); `version` or `src` with several names or with `state = \"latest\"` or `\"absent\"`; `version` with `provider = \"apk\"` or `\"pacman\"` (when the provider comes from the host's facts, the check reports it); a `src` that does not exist (relative to the policy directory) or is not a readable regular file. A value written as a template (`{{ ... }}`) is checked once rendered for each host." + ``,
		toml: `[[roles.resources]]
type = "package"
name = ["nginx", "curl", "git"]
update_cache = true

[[roles.resources]]
type = "package"
name = "opsmop-agent"
src = "files/opsmop-agent_1.2.0_all.deb"

[[roles.resources]]
type = "package"
name = "openssl"
state = "latest"

[[roles.resources]]
type = "package"
name = ["telnet", "rsh-client"]
state = "absent"`,
		yaml: `- type: package
  name: [nginx, curl, git]
  update_cache: true
- type: package
  name: opsmop-agent
  src: files/opsmop-agent_1.2.0_all.deb
- type: package
  name: openssl
  state: latest
- type: package
  name: [telnet, rsh-client]
  state: absent`,
	},
	"service": serviceDocs(), // service_systemd_test.go
	"user": {
		notes: `- The probe reads ` + "`getent passwd NAME`, `id -gn NAME`, `id -Gn NAME`" + ` and, when ` + "`password`" + ` is given, the hash in ` + "`/etc/shadow`" + ` (readable by root only: without it the password is not managed and check says so).
- Apply runs ` + "`useradd`" + ` / ` + "`usermod`" + ` / ` + "`userdel`" + ` (the home directory is kept); the password hash is given to ` + "`chpasswd -e`" + ` on stdin, so it never appears in a process list, and changes show as ` + "`password: <redacted> -> <changed>`" + `.
- ` + "`password`" + ` takes a crypt(3) hash, e.g. from ` + "`mkpasswd -m sha-512`" + ` or ` + "`openssl passwd -6`" + `; keep it out of the policy with a variable.
- ` + "`home`, `shell`" + ` and ` + "`comment`" + ` are fields of ` + "`/etc/passwd`" + `, which cannot hold a colon or a control character (tab, newline, NUL...): such a value is refused before the host is touched, naming the byte (` + "`comment contains \"\\t\" at byte 1: /etc/passwd fields cannot hold a colon or control characters (tab, newline, NUL...)`" + `).
- ` + "`groups`" + ` without ` + "`append`" + ` sets exactly these supplementary groups; with ` + "`append`" + ` only missing ones are added. ` + "`uid`, `system`" + ` and ` + "`create_home`" + ` matter at creation (` + "`uid`" + ` is also changed on an existing user).` + "\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `name`, `group` or `groups` entry that is not a valid name (empty, starting with `-`, or holding `:`, `,`, `/` or a space); a negative `uid`; the `/etc/passwd` fields above; a `password` holding a colon, newline or NUL byte (never showing it). A value written as a template (`{{ ... }}`) is checked once rendered for each host." + ``,
		toml: `[[roles.resources]]
type = "user"
name = "deploy"
shell = "/bin/bash"
groups = ["sudo", "docker"]
append = true
comment = "Deploy user"

[[roles.resources]]
type = "user"
name = "app"
system = true
home = "/srv/app"
create_home = false
shell = "/usr/sbin/nologin"

[[roles.resources]]
type = "user"
name = "olduser"
state = "absent"`,
		yaml: `- type: user
  name: deploy
  shell: /bin/bash
  groups: [sudo, docker]
  append: true
  comment: Deploy user
- type: user
  name: app
  system: true
  home: /srv/app
  create_home: false
  shell: /usr/sbin/nologin
- type: user
  name: olduser
  state: absent`,
	},
	"authorized_key": authorizedKeyDocs(), // authorized_key_test.go
	"group": {
		notes: "- Apply runs `groupadd` / `groupmod -g` / `groupdel`.\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `name` that is not a valid name; a negative `gid`. A value written as a template (`{{ ... }}`) is checked once rendered for each host.",
		toml: `[[roles.resources]]
type = "group"
name = "app"
gid = 2000

[[roles.resources]]
type = "group"
name = "oldgroup"
state = "absent"`,
		yaml: `- type: group
  name: app
  gid: 2000
- type: group
  name: oldgroup
  state: absent`,
	},
	"cron":      cronDocs(),      // cron_test.go
	"tree":      treeDocs(),      // tree_test.go
	"git":       gitDocs(),       // git_test.go
	"download":  downloadDocs(),  // download_test.go
	"unarchive": unarchiveDocs(), // unarchive_test.go
	"echo": {
		notes: "- Check reports no change with the message; apply does nothing. Nothing runs on the host.",
		toml: `[[roles.resources]]
type = "echo"
msg = "deploying release {{ .release }}"`,
		yaml: `- type: echo
  msg: "deploying release {{ .release }}"`,
	},
	"assert": {
		notes: "- Each expression is evaluated in order during check (nothing runs on the host); the first false one fails the host with `assertion failed: EXPR: MSG`. A non-boolean result is an error too.\n- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports an empty `that`, an empty expression, and expressions that do not compile.",
		toml: `[[roles.resources]]
type = "assert"
that = ["facts.os_family == 'debian'", "http_port > 1024"]
msg = "this role needs Debian and an unprivileged port"`,
		yaml: `- type: assert
  that: ["facts.os_family == 'debian'", "http_port > 1024"]
  msg: this role needs Debian and an unprivileged port`,
	},
}

// docPage renders docs/resources/<type>.md.
func docPage(rt policy.ResourceType) string {
	d := typeDocs[rt.Name]
	var b strings.Builder
	fmt.Fprintf(&b, "# `%s`\n\n%s\n\n", rt.Name, rt.Doc)
	handler := "no"
	if rt.Handler {
		handler = "yes"
	}
	fmt.Fprintf(&b, "Identity key: `%s` (the default label is `%s[%s]`). May be a handler: %s.\n\n", rt.Identity, rt.Name, strings.ToUpper(rt.Identity), handler)
	b.WriteString("Generated from the spec struct in providers/ by `go test ./providers -run TestDocs -update`; edit there.\n\n")
	b.WriteString("## Keys\n\nBesides the common resource keys (docs/language.md):\n\n| key | type | default | description |\n|---|---|---|---|\n")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, k := range policy.DocKeys(rt) {
		typ := k.Type
		if len(k.Enum) > 0 {
			var q []string
			for _, e := range k.Enum {
				q = append(q, "`"+e+"`")
			}
			typ = "one of " + strings.Join(q, ", ")
		}
		if k.Required {
			typ += ", **required**"
		}
		if k.Expr {
			typ += ", expression"
		}
		def := ""
		if k.Default != "" {
			def = "`" + k.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Key, esc(typ), esc(def), esc(k.Doc))
	}
	fmt.Fprintf(&b, "\n## Behaviour\n\n%s\n\n## Example (TOML)\n\n```toml\n%s\n```\n\n## Example (YAML)\n\n```yaml\nresources:\n%s\n```\n", d.notes, d.toml, indent(d.yaml, "  "))
	return b.String()
}

func indent(s, pre string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pre + l
		}
	}
	return strings.Join(lines, "\n")
}

// TestDocs keeps docs/resources/*.md in step with the spec structs: every
// key is listed with its type, default and doc. Run with -update to
// rewrite them.
func TestDocs(t *testing.T) {
	dir := filepath.Join("..", "docs", "resources")
	reg := Registry()
	if len(reg) != len(typeDocs) {
		t.Errorf("registry has %d types, typeDocs %d: document every type", len(reg), len(typeDocs))
	}
	for name, rt := range reg {
		t.Run(name, func(t *testing.T) {
			if _, ok := typeDocs[name]; !ok {
				t.Fatalf("no docs for type %s in typeDocs", name)
			}
			want := docPage(rt)
			p := filepath.Join(dir, name+".md")
			if *updateDocs {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("%v (run go test ./providers -run TestDocs -update)", err)
			}
			if string(got) != want {
				t.Errorf("%s is out of date: run go test ./providers -run TestDocs -update", p)
			}
			for _, k := range policy.DocKeys(rt) {
				if k.Doc == "" {
					t.Errorf("key %s has no doc tag", k.Key)
				}
				if !strings.Contains(string(got), "| `"+k.Key+"` |") {
					t.Errorf("%s does not list key %s", p, k.Key)
				}
			}
		})
	}
}

// TestDocExamplesDecode loads every docs example, TOML and YAML, with the
// policy loader and this package's registry: the examples are valid and
// both forms decode to the same specs.
func TestDocExamplesDecode(t *testing.T) {
	reg := Registry()
	for name, d := range typeDocs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tomlPath := filepath.Join(dir, "site.toml")
			yamlPath := filepath.Join(dir, "site.yaml")
			tomlSrc := "[[roles]]\nname = \"example\"\n\n" + d.toml + "\n"
			yamlSrc := "roles:\n  - name: example\n" + indent("resources:\n"+indent(d.yaml, "  "), "    ") + "\n"
			if strings.Contains(d.toml, "[[roles.handlers]]") {
				// The YAML example shows only resources.
				tomlSrc = tomlSrc[:strings.Index(tomlSrc, "[[roles.handlers]]")]
			}
			// Handlers that the examples notify.
			for _, h := range []string{"restart app", "reload sshd"} {
				tomlSrc += "\n[[roles.handlers]]\nname = \"" + h + "\"\ntype = \"echo\"\nmsg = \"x\"\n"
			}
			yamlSrc += "    handlers:\n      - {name: restart app, type: echo, msg: x}\n      - {name: reload sshd, type: echo, msg: x}\n"
			if err := os.WriteFile(tomlPath, []byte(tomlSrc), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(yamlPath, []byte(yamlSrc), 0o644); err != nil {
				t.Fatal(err)
			}
			pt, err := policy.Load(tomlPath, reg)
			if err != nil {
				t.Fatalf("TOML example:\n%s\n%v", tomlSrc, err)
			}
			py, err := policy.Load(yamlPath, reg)
			if err != nil {
				t.Fatalf("YAML example:\n%s\n%v", yamlSrc, err)
			}
			rt, ry := pt.Roles[0].Resources, py.Roles[0].Resources
			if len(rt) != len(ry) || len(rt) == 0 {
				t.Fatalf("TOML has %d resources, YAML %d; want the same, at least one", len(rt), len(ry))
			}
			for i := range rt {
				if rt[i].Type != name {
					t.Errorf("resource %d: type %s; want %s", i, rt[i].Type, name)
				}
				if !reflect.DeepEqual(rt[i].Spec, ry[i].Spec) {
					t.Errorf("resource %d: TOML spec %+v differs from YAML spec %+v", i, rt[i].Spec, ry[i].Spec)
				}
				if _, err := mustProvider(name).Probe(&Request{Spec: rt[i].Spec, Facts: map[string]any{"pkg_manager": "apt"}}); err != nil {
					t.Errorf("resource %d: probe of the decoded example: %v", i, err)
				}
			}
		})
	}
}

func mustProvider(name string) Provider {
	p, ok := Lookup(name)
	if !ok {
		panic("no provider " + name)
	}
	return p
}

func TestRegistry(t *testing.T) {
	reg := Registry()
	want := map[string]struct {
		identity string
		handler  bool
	}{
		"file": {"path", true}, "template": {"path", true}, "directory": {"path", true}, "link": {"path", true},
		"line": {"path", true}, "shell": {"cmd", true}, "package": {"name", false}, "service": {"service", true},
		"user": {"name", false}, "authorized_key": {"user", false}, "group": {"name", false}, "cron": {"name", false}, "echo": {"msg", true}, "assert": {"that", true},
		"git":       {"path", true},
		"download":  {"path", true}, // download_test.go
		"unarchive": {"path", true}, // unarchive_test.go
		"tree":      {"path", true}, // tree_test.go
	}
	if len(reg) != len(want) {
		t.Errorf("got %d types; want %d", len(reg), len(want))
	}
	for name, w := range want {
		rt, ok := reg[name]
		if !ok {
			t.Errorf("type %s missing", name)
			continue
		}
		if rt.Identity != w.identity || rt.Handler != w.handler || rt.Doc == "" {
			t.Errorf("%s: got identity %q handler %v doc %q; want %q %v and a doc", name, rt.Identity, rt.Handler, rt.Doc, w.identity, w.handler)
		}
		s1, s2 := rt.New(), rt.New()
		if reflect.TypeOf(s1).Kind() != reflect.Pointer || s1 == s2 {
			t.Errorf("%s: New must return a fresh pointer each call", name)
		}
		found := false
		for _, k := range policy.DocKeys(rt) {
			if k.Key == rt.Identity {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: identity key %q is not a key of the spec", name, rt.Identity)
		}
		p, ok := Lookup(name)
		if !ok || p == nil {
			t.Errorf("Lookup(%q): got %v, %v", name, p, ok)
			continue
		}
		// The provider accepts the type's spec (and rejects another's).
		if _, err := p.Probe(&Request{Spec: rt.New(), Facts: map[string]any{}}); err != nil && strings.Contains(err.Error(), "spec is") {
			t.Errorf("%s: provider rejects its own spec: %v", name, err)
		}
		if _, err := p.Probe(&Request{Spec: &struct{}{}}); err == nil || !strings.Contains(err.Error(), "spec is") {
			t.Errorf("%s: provider accepted a foreign spec: %v", name, err)
		}
	}
	if _, ok := Lookup("nosuch"); ok {
		t.Error("Lookup(nosuch): got ok")
	}
}
