package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// PackageSpec is the `package` resource: OS packages, several installed
// in one transaction.
type PackageSpec struct {
	Name        []string `opsmop:"name" required:"true" list1:"true" doc:"a package name or a list of them (installed or removed in one transaction); with src, the one name of the package in that file"`
	Version     string   `opsmop:"version" doc:"the version to install (only with a single name); an installed version matches when it is equal or starts with it followed by \"-\" (so \"1.2\" matches \"1.2-3\")"`
	State       string   `opsmop:"state" enum:"present|latest|absent" default:"present" doc:"present: installed (any version unless version is given); latest: installed and at the newest version the package cache knows; absent: not installed"`
	UpdateCache bool     `opsmop:"update_cache" doc:"refresh the package cache (apt-get update, dnf makecache, apk update, pacman -Sy) before installing; it is refreshed only when something is to be installed, so latest compares against the cache as it is"`
	Provider    string   `opsmop:"provider" enum:"apt|dnf|yum|apk|pacman" doc:"the package manager; default: the host's pkg_manager fact"`
	Src         string   `opsmop:"src" local:"file" doc:"a local package file (relative to the policy directory) to upload and install, e.g. a .deb (installed with apt-get install ./file.deb, so its dependencies come from the repositories)"`
}

// Validate checks the rules of a package that need no host (see
// Validator): names are package names; state and provider are known
// values; version and src go with a single name and state = "present";
// version is not given for a package manager that cannot pin one (when
// provider names it; else Probe and Check check that for the host's).
func (s *PackageSpec) Validate() error {
	var p problems
	if len(s.Name) == 0 {
		p.add("name", "name is required")
	}
	for _, n := range s.Name {
		if !templated(n) && (n == "" || n[0] == '-' || strings.ContainsAny(n, " \t\n\x00=")) {
			p.add("name", "name %q is not a package name", n)
		}
	}
	p.enum("state", s.State, "present", "latest", "absent")
	p.enum("provider", s.Provider, "apt", "dnf", "yum", "apk", "pacman")
	if s.Version != "" {
		if len(s.Name) > 1 {
			p.add("version", "version is only allowed with a single name")
		}
		if s.State == "latest" || s.State == "absent" {
			p.add("version", "version makes no sense with state = %q", s.State)
		}
		if s.Provider != "" && !templated(s.Provider) {
			if m, err := managerFor(nil, s); err == nil {
				p.addErr("version", s.versionFor(m))
			}
		}
	}
	if s.Src != "" {
		if len(s.Name) > 1 {
			p.add("src", "with src give the one name of the package in that file")
		}
		if s.State == "latest" || s.State == "absent" {
			p.add("src", "src installs a package file: it takes state = \"present\", not %q", s.State)
		}
	}
	return p.err()
}

// packageProvider implements `package`.
type packageProvider struct{}

// packagePlan is what Apply does for a package resource: one run of the
// package manager.
type packagePlan struct {
	Manager     string
	Names       []string
	Install     []string // names (pinned when a version is given) to install
	Upgrade     []string
	Remove      []string
	Src         string
	UpdateCache bool
}

// labels names the instance by its package names.
func (packageProvider) labels(s *PackageSpec) errLabels {
	l := "package " + s.label()
	return errLabels{Probe: l, Check: l, Apply: l}
}

// Probe lists which of the names are installed (and, for latest, which
// have a newer version in the package cache).
func (packageProvider) Probe(s *PackageSpec, req *Request) (string, error) {
	m, err := s.manager(req)
	if err != nil {
		return "", err
	}
	return m.probe(s.Name, s.State == "latest"), nil
}

// Check decides what to install, upgrade or remove.
func (packageProvider) Check(s *PackageSpec, req *Request, probe connection.Result) (*Change, error) {
	m, err := s.manager(req)
	if err != nil {
		return nil, err
	}
	if probe.ExitCode != 0 {
		return nil, fmt.Errorf("probe failed with exit status %d: %s", probe.ExitCode, firstLines(probe.Stderr, 5))
	}
	installed, upgradable := m.parse(s.Name, string(probe.Stdout))
	pl := packagePlan{Manager: m.name, Names: s.Name, UpdateCache: s.UpdateCache}
	msg := ""
	if s.Src != "" && s.Version == "" && strings.HasSuffix(s.Src, ".deb") {
		v, note, err := srcDebVersion(req, s)
		if err != nil {
			return nil, err
		}
		msg = note
		if v != "" {
			c := *s
			c.Version = v
			s = &c
		}
	}
	var fields []Field
	missing := 0
	for _, n := range s.Name {
		v, ok := installed[n]
		switch s.State {
		case "absent":
			if ok {
				pl.Remove = append(pl.Remove, n)
				fields = append(fields, Field{Name: n, Before: v, After: "absent"})
			}
		case "latest":
			if !ok {
				missing++
				pl.Install = append(pl.Install, n)
				fields = append(fields, Field{Name: n, Before: "absent", After: "latest"})
			} else if c, up := upgradable[n]; up {
				pl.Upgrade = append(pl.Upgrade, n)
				fields = append(fields, Field{Name: n, Before: v, After: c})
			}
		default:
			want := orDefault(s.Version, "present")
			switch {
			case !ok:
				missing++
			case s.Version != "" && !versionMatches(v, s.Version):
			default:
				continue
			}
			before := v
			if !ok {
				before = "absent"
			}
			fields = append(fields, Field{Name: n, Before: before, After: want})
			if s.Src != "" {
				pl.Src = s.Src
			} else if s.Version != "" {
				pl.Install = append(pl.Install, m.pin(n, s.Version))
			} else {
				pl.Install = append(pl.Install, n)
			}
		}
	}
	if len(fields) == 0 {
		return &Change{Action: None, Message: msg}, nil
	}
	act := Update
	switch {
	case s.State == "absent":
		act = Delete
	case missing == len(s.Name):
		act = Create
	}
	return &Change{Action: act, Fields: fields, Message: msg, Plan: pl}, nil
}

// Apply runs the package manager once for what Check found.
func (packageProvider) Apply(ctx context.Context, h Host, s *PackageSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[packagePlan](ch, "package")
	if err != nil {
		return nil, err
	}
	if err := applyPackage(ctx, h, req, pl); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}

// label is the package names, comma-separated, as errors show them.
func (s *PackageSpec) label() string { return strings.Join(s.Name, ",") }

// versionFor checks that m can install the version s asks for.
func (s *PackageSpec) versionFor(m pkgManager) error {
	if s.Version != "" && m.pin == nil {
		return fmt.Errorf("version is not supported with %s: leave it out, or use src with a package file", m.name)
	}
	return nil
}

// manager returns the package manager to use for s on the host, checking
// the rule of s that depends on it (see versionFor).
func (s *PackageSpec) manager(req *Request) (pkgManager, error) {
	m, err := managerFor(req, s)
	if err != nil {
		return pkgManager{}, err
	}
	return m, s.versionFor(m)
}

// pkgManager knows one package manager's commands and output.
type pkgManager struct {
	name string
	// probe prints the installed packages among names and, when latest,
	// a line "--opsmop-updates--" followed by what tells the newer ones.
	probe func(names []string, latest bool) string
	// parse reads probe output into installed name → version and the set
	// of names with a newer version available.
	parse func(names []string, out string) (installed map[string]string, upgradable map[string]string)
	// pin formats a name with a version for install.
	pin         func(name, version string) string
	updateCache string
	install     func(args []string) string
	upgrade     func(args []string) string
	remove      func(args []string) string
	installFile func(p string) string
}

const updatesMarker = "--opsmop-updates--"

// splitUpdates splits probe output at the updates marker.
func splitUpdates(out string) (inst, upd string) {
	inst, upd, _ = strings.Cut(out, updatesMarker+"\n")
	return inst, upd
}

// pkgWords quotes names as sh words.
func pkgWords(names []string) string { return shell.Join(names...) }

var aptManager = pkgManager{
	name: "apt",
	probe: func(names []string, latest bool) string {
		s := "LC_ALL=C dpkg-query -W -f '${Package} ${Status} ${Version}\\n' " + pkgWords(names) + " 2>/dev/null\n"
		if latest {
			// Empty cache file names: apt builds its cache in memory and
			// writes nothing, keeping the probe read-only.
			s += "echo " + updatesMarker + "\nLC_ALL=C apt-cache -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= policy " + pkgWords(names) + " 2>/dev/null\n"
		}
		return s + "exit 0\n"
	},
	parse: func(names []string, out string) (map[string]string, map[string]string) {
		inst, upd := splitUpdates(out)
		installed := map[string]string{}
		for _, l := range strings.Split(inst, "\n") {
			f := strings.Fields(l)
			// name want flag status [version]
			if len(f) >= 5 && f[3] == "installed" {
				if _, dup := installed[f[0]]; !dup {
					installed[f[0]] = f[4]
				}
			}
		}
		upgradable := map[string]string{}
		cur := ""
		for _, l := range strings.Split(upd, "\n") {
			if l == "" {
				continue
			}
			if l[0] != ' ' && strings.HasSuffix(l, ":") {
				cur = strings.TrimSuffix(l, ":")
				continue
			}
			if c, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate:"); ok && cur != "" {
				c = strings.TrimSpace(c)
				if v, ok := installed[cur]; ok && c != "" && c != "(none)" && c != v {
					upgradable[cur] = c
				}
			}
		}
		return installed, upgradable
	},
	pin:         func(n, v string) string { return n + "=" + v },
	updateCache: "apt-get update -q",
	install: func(args []string) string {
		return "apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold " + pkgWords(args)
	},
	upgrade: nil, // apt-get install upgrades named packages
	remove:  func(args []string) string { return "apt-get remove -y -q " + pkgWords(args) },
	// A package file that depends on nothing and recommends nothing is
	// installed with dpkg itself: apt-get would only call dpkg for it,
	// after loading its whole cache (1.5 s of CPU on a small host,
	// against 0.3 s). Otherwise apt-get resolves what it needs.
	installFile: func(p string) string {
		q := shell.Quote(p)
		return "if dpkg-deb -f " + q + " Package >/dev/null 2>&1 && [ -z \"$(dpkg-deb -f " + q + " Depends Pre-Depends Recommends 2>/dev/null)\" ]; then\n" +
			"dpkg -i --force-confdef --force-confold " + q + "\nelse\n" +
			"apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold " + q + "\nfi"
	},
}

// rpmManager is dnf or yum (bin).
func rpmManager(bin string) pkgManager {
	return pkgManager{
		name: bin,
		probe: func(names []string, latest bool) string {
			s := "rpm -q --qf '%{NAME} %{VERSION}-%{RELEASE}\\n' " + pkgWords(names) + " 2>/dev/null\n"
			if latest {
				s += "echo " + updatesMarker + "\n" + bin + " -q check-update " + pkgWords(names) + " 2>/dev/null\n"
			}
			return s + "exit 0\n"
		},
		parse: func(names []string, out string) (map[string]string, map[string]string) {
			inst, upd := splitUpdates(out)
			want := setOf(names)
			installed := map[string]string{}
			for _, l := range strings.Split(inst, "\n") {
				// "package X is not installed" has more fields.
				if f := strings.Fields(l); len(f) == 2 && want[f[0]] {
					installed[f[0]] = f[1]
				}
			}
			upgradable := map[string]string{}
			for _, l := range strings.Split(upd, "\n") {
				f := strings.Fields(l) // name.arch version repo
				if len(f) < 2 {
					continue
				}
				n := f[0]
				if i := strings.LastIndexByte(n, '.'); i > 0 {
					n = n[:i]
				}
				if _, ok := installed[n]; ok && want[n] {
					upgradable[n] = f[1]
				}
			}
			return installed, upgradable
		},
		pin:         func(n, v string) string { return n + "-" + v },
		updateCache: bin + " makecache -q",
		install:     func(args []string) string { return bin + " install -y " + pkgWords(args) },
		upgrade:     func(args []string) string { return bin + " upgrade -y " + pkgWords(args) },
		remove:      func(args []string) string { return bin + " remove -y " + pkgWords(args) },
		installFile: func(p string) string { return bin + " install -y " + shell.Quote(p) },
	}
}

var apkManager = pkgManager{
	name: "apk",
	probe: func(names []string, latest bool) string {
		s := "for n in " + pkgWords(names) + "; do if apk info -e \"$n\" >/dev/null 2>&1; then printf '%s installed\\n' \"$n\"; fi; done\n"
		if latest {
			s += "echo " + updatesMarker + "\napk version -l '<' " + pkgWords(names) + " 2>/dev/null\n"
		}
		return s + "exit 0\n"
	},
	parse: func(names []string, out string) (map[string]string, map[string]string) {
		inst, upd := splitUpdates(out)
		installed := map[string]string{}
		want := setOf(names)
		for _, l := range strings.Split(inst, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[1] == "installed" && want[f[0]] {
				installed[f[0]] = "installed"
			}
		}
		upgradable := map[string]string{}
		for _, l := range strings.Split(upd, "\n") {
			// "name-1.2-r0 < 1.3-r0"
			f := strings.Fields(l)
			if len(f) != 3 || f[1] != "<" {
				continue
			}
			for n := range installed {
				if rest, ok := strings.CutPrefix(f[0], n+"-"); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
					upgradable[n] = f[2]
				}
			}
		}
		return installed, upgradable
	},
	updateCache: "apk update -q",
	install:     func(args []string) string { return "apk add " + pkgWords(args) },
	upgrade:     func(args []string) string { return "apk add -u " + pkgWords(args) },
	remove:      func(args []string) string { return "apk del " + pkgWords(args) },
	installFile: func(p string) string { return "apk add --allow-untrusted " + shell.Quote(p) },
}

var pacmanManager = pkgManager{
	name: "pacman",
	probe: func(names []string, latest bool) string {
		s := "pacman -Q " + pkgWords(names) + " 2>/dev/null\n"
		if latest {
			s += "echo " + updatesMarker + "\npacman -Qu " + pkgWords(names) + " 2>/dev/null\n"
		}
		return s + "exit 0\n"
	},
	parse: func(names []string, out string) (map[string]string, map[string]string) {
		inst, upd := splitUpdates(out)
		want := setOf(names)
		installed := map[string]string{}
		for _, l := range strings.Split(inst, "\n") {
			if f := strings.Fields(l); len(f) == 2 && want[f[0]] {
				installed[f[0]] = f[1]
			}
		}
		upgradable := map[string]string{}
		for _, l := range strings.Split(upd, "\n") {
			// "name 1.0-1 -> 1.1-1"
			if f := strings.Fields(l); len(f) == 4 && f[2] == "->" && want[f[0]] {
				upgradable[f[0]] = f[3]
			}
		}
		return installed, upgradable
	},
	updateCache: "pacman -Sy --noconfirm",
	install:     func(args []string) string { return "pacman -S --noconfirm --needed " + pkgWords(args) },
	upgrade:     func(args []string) string { return "pacman -S --noconfirm " + pkgWords(args) },
	remove:      func(args []string) string { return "pacman -R --noconfirm " + pkgWords(args) },
	installFile: func(p string) string { return "pacman -U --noconfirm " + shell.Quote(p) },
}

// setOf is the set of names.
func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// managerFor picks the package manager from the spec or the host's facts.
func managerFor(req *Request, s *PackageSpec) (pkgManager, error) {
	name := s.Provider
	if name == "" && req != nil {
		if v, ok := req.Facts["pkg_manager"].(string); ok {
			name = v
		}
	}
	switch name {
	case "apt":
		return aptManager, nil
	case "dnf", "yum":
		return rpmManager(name), nil
	case "apk":
		return apkManager, nil
	case "pacman":
		return pacmanManager, nil
	case "":
		return pkgManager{}, fmt.Errorf("cannot tell which package manager the host uses (no pkg_manager fact): set provider to apt, dnf, yum, apk or pacman")
	}
	return pkgManager{}, fmt.Errorf("package manager %q is not supported: set provider to apt, dnf, yum, apk or pacman", name)
}

// versionMatches reports whether an installed version satisfies want.
func versionMatches(installed, want string) bool {
	return installed == want || strings.HasPrefix(installed, want+"-")
}

// srcDebVersion reads the version inside a local .deb, checking that it
// holds the named package. When the control member cannot be read (xz or
// zstd), it returns no version and a note saying only presence is checked.
func srcDebVersion(req *Request, s *PackageSpec) (version, note string, err error) {
	if req.Open == nil {
		return "", "", fmt.Errorf("src %s: no local file access in this context", s.Src)
	}
	rc, _, err := req.Open(s.Src)
	if err != nil {
		return "", "", fmt.Errorf("src %s: %w", s.Src, err)
	}
	defer rc.Close()
	name, version, err := debControl(rc)
	if errors.Is(err, errDebUnreadable) {
		return "", "src " + s.Src + ": its control member is xz/zstd-compressed, so only the presence of " + s.Name[0] + " is checked: give version to compare versions", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("src %s: %w", s.Src, err)
	}
	if name != s.Name[0] {
		return "", "", fmt.Errorf("src %s holds package %q, not %q: make name match the package in the file", s.Src, name, s.Name[0])
	}
	return version, "", nil
}

// applyPackage runs the package manager once for pl.
func applyPackage(ctx context.Context, h Host, req *Request, pl packagePlan) error {
	m, err := managerFor(req, &PackageSpec{Provider: pl.Manager})
	if err != nil {
		return err
	}
	file := ""
	if pl.Src != "" {
		dir, err := uploadTemp(ctx, h, req, pl.Src)
		if dir != "" {
			defer func() { _, _ = h.Run(context.WithoutCancel(ctx), "rm -rf -- "+shell.Quote(dir), nil) }()
		}
		if err != nil {
			return err
		}
		file = path.Join(dir, path.Base(pl.Src))
	}
	_, err = run(ctx, h, m.name, packageScript(m, pl, file), nil)
	return err
}

// ApplyStep is Apply as one step. A package file (src) of at most
// MaxStepStdin bytes travels as the step's stdin into a temp directory
// that the step makes and removes, as Apply's upload does; a larger one
// goes through Apply (ok false).
func (packageProvider) ApplyStep(s *PackageSpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[packagePlan](ch, "package")
	if err != nil {
		return Step{}, false, err
	}
	m, err := managerFor(req, &PackageSpec{Provider: pl.Manager})
	if err != nil {
		return Step{}, false, err
	}
	if pl.Src == "" {
		return Step{Script: packageScript(m, pl, ""), What: m.name}, true, nil
	}
	if req == nil || req.Open == nil {
		return Step{}, false, nil
	}
	rc, size, err := req.Open(pl.Src)
	if err != nil {
		return Step{}, false, fmt.Errorf("src %s: %w", pl.Src, err)
	}
	defer rc.Close()
	if size > MaxStepStdin {
		return Step{}, false, nil
	}
	data, err := io.ReadAll(io.LimitReader(rc, MaxStepStdin+1))
	if err != nil {
		return Step{}, false, fmt.Errorf("src %s: %w", pl.Src, err)
	}
	if int64(len(data)) != size {
		return Step{}, false, fmt.Errorf("src %s: changed while it was read (%d bytes, was %d): run again", pl.Src, len(data), size)
	}
	name := path.Base(pl.Src)
	script := "d=$(mktemp -d \"${TMPDIR:-/tmp}/opsmop.XXXXXXXX\") || exit 1\n" +
		"trap 'rm -rf -- \"$d\"' EXIT\n" +
		"(umask 022; cat >\"$d\"/" + shell.Quote(name) + ") || exit 1\n" +
		"cd \"$d\" || exit 1\n" + packageScript(m, pl, "./"+name)
	return Step{Script: script, Stdin: data, What: m.name}, true, nil
}

// packageScript is the script that runs m once for pl; file is where pl's
// src was uploaded on the host ("" without src).
func packageScript(m pkgManager, pl packagePlan, file string) string {
	var cmds []string
	if m.name == "apt" {
		cmds = append(cmds, "DEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND")
	}
	if pl.UpdateCache && (len(pl.Install) > 0 || len(pl.Upgrade) > 0 || pl.Src != "") {
		cmds = append(cmds, m.updateCache)
	}
	if len(pl.Remove) > 0 {
		cmds = append(cmds, m.remove(pl.Remove))
	}
	if m.upgrade == nil {
		// One transaction installs and upgrades.
		if all := append(append([]string(nil), pl.Install...), pl.Upgrade...); len(all) > 0 {
			cmds = append(cmds, m.install(all))
		}
	} else {
		if len(pl.Install) > 0 {
			cmds = append(cmds, m.install(pl.Install))
		}
		if len(pl.Upgrade) > 0 {
			cmds = append(cmds, m.upgrade(pl.Upgrade))
		}
	}
	if file != "" {
		cmds = append(cmds, m.installFile(file))
	}
	return "set -e\n" + strings.Join(cmds, "\n") + "\n"
}

// uploadTemp uploads the local file src into a fresh private directory
// on the host and returns that directory (which the caller removes).
func uploadTemp(ctx context.Context, h Host, req *Request, src string) (string, error) {
	if req == nil || req.Open == nil {
		return "", fmt.Errorf("src %s: no local file access in this context", src)
	}
	rc, size, err := req.Open(src)
	if err != nil {
		return "", fmt.Errorf("src %s: %w", src, err)
	}
	defer rc.Close()
	res, err := run(ctx, h, "mktemp", "mktemp -d \"${TMPDIR:-/tmp}/opsmop.XXXXXXXX\"", nil)
	if err != nil {
		return "", err
	}
	dir := strings.TrimSpace(string(res.Stdout))
	if !path.IsAbs(dir) {
		return "", fmt.Errorf("mktemp -d returned %q", dir)
	}
	if err := h.Upload(ctx, path.Join(dir, path.Base(src)), rc, size, connection.UploadOptions{Mode: 0o644}); err != nil {
		return dir, fmt.Errorf("upload %s: %w", src, err)
	}
	return dir, nil
}
