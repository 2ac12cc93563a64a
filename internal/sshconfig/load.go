package sshconfig

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Config is parsed configuration: the sources in order, with Includes
// parsed (glob-expanded, in glob order, nested at most 16 deep like
// OpenSSH). A Config is not changed by Lookup and may be used concurrently.
type Config struct {
	files []*file
	kw    map[string]Keyword
}

// file is one parsed configuration file.
type file struct {
	path  string
	lines []line
}

// line is one directive with what Load worked out about it.
type line struct {
	rawLine
	class   string      // keyword class; "" for an unknown keyword covered by some IgnoreUnknown
	val     any         // parsed value of an honoured keyword
	match   []criterion // Match criteria
	include []*file     // files an Include line read, in glob order
}

// loader holds the state of one Load call.
type loader struct {
	home    string
	kw      map[string]Keyword
	ignored []string // IgnoreUnknown pattern lists seen so far
	nfiles  int
}

// Load parses srcs in order. home expands ~ and locates relative Includes
// of user files. Syntax errors (bad quoting, a keyword with no argument, an
// unknown keyword not covered by an earlier IgnoreUnknown, a bad value of an
// honoured keyword, a bad Host/Match line, an Include too deep or looping)
// are *Error naming file:line and what to do. An unknown keyword that an
// earlier IgnoreUnknown line covers is checked again by Lookup, because
// IgnoreUnknown only takes effect where its block applies (as OpenSSH).
// Included files must not be writable by group or others and must be owned
// by root or the current user (OpenSSH's rule).
func Load(srcs []Source, home string) (*Config, error) {
	ld := &loader{home: home, kw: keywordIndex()}
	c := &Config{kw: ld.kw}
	for _, src := range srcs {
		path, err := tildeExpand(src.Path, home)
		if err != nil {
			return nil, &Error{Pos: Pos{File: src.Path}, Msg: err.Error()}
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && !src.Required {
			continue
		}
		if err != nil {
			return nil, &Error{Pos: Pos{File: path}, Msg: "cannot read config file: " + errText(err)}
		}
		f, err := ld.parse(path, data, src.System, 0)
		if err != nil {
			return nil, err
		}
		c.files = append(c.files, f)
	}
	return c, nil
}

// errText is err's message without the path os already put in it.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// parse parses one file's text.
func (ld *loader) parse(path string, data []byte, system bool, depth int) (*file, error) {
	f := &file{path: path}
	for i, text := range strings.Split(string(data), "\n") {
		rl, ok, err := lexLine(text, Pos{File: path, Line: i + 1})
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		l, err := ld.check(rl, system, depth)
		if err != nil {
			return nil, err
		}
		f.lines = append(f.lines, l)
	}
	return f, nil
}

// check classifies and validates one directive.
func (ld *loader) check(rl rawLine, system bool, depth int) (line, error) {
	l := line{rawLine: rl}
	fail := func(msg string) (line, error) { return l, &Error{Pos: rl.pos, Msg: msg} }
	k, known := ld.kw[rl.keyword]
	if !known {
		for _, list := range ld.ignored {
			if matchPatternList(rl.keyword, list, true) == 1 {
				return l, nil
			}
		}
		return fail("Bad configuration option: " + rl.keyword + ": fix the spelling, or list it in an IgnoreUnknown line before this one")
	}
	l.class = k.Class
	var err error
	switch {
	case rl.keyword == "host":
		err = checkHostLine(rl.args)
	case rl.keyword == "match":
		l.match, err = parseMatch(rl.args)
	case rl.keyword == "include":
		l.include, err = ld.include(rl, system, depth)
		if e := (*Error)(nil); errors.As(err, &e) {
			return l, err
		}
	case rl.keyword == "ignoreunknown":
		l.val, err = oneArg(rl.args)
		if err == nil {
			ld.ignored = append(ld.ignored, rl.args[0])
		}
	case k.Class == ClassHonoured:
		l.val, err = parseValue(rl.keyword, rl.args, rl.rest)
	case k.Class == ClassUnsupported && len(rl.args) == 0:
		err = errors.New("missing argument: give this keyword a value")
	}
	if err != nil {
		return fail(k.Name + ": " + err.Error())
	}
	return l, nil
}

// checkHostLine rejects empty Host patterns.
func checkHostLine(args []string) error {
	for _, a := range args {
		if a == "" {
			return errors.New("empty pattern: remove the empty quotes")
		}
	}
	return nil
}

// include reads the files an Include line names. Relative paths resolve
// under HOME/.ssh for user files and /etc/ssh for system files; ~ is not
// allowed in system files; a glob that matches nothing is skipped.
func (ld *loader) include(rl rawLine, system bool, depth int) ([]*file, error) {
	if len(rl.args) == 0 {
		return nil, errors.New("missing argument: give one or more file names or globs")
	}
	var files []*file
	for _, arg := range rl.args {
		if arg == "" {
			return nil, errors.New("empty argument: remove the empty quotes")
		}
		paths, err := ld.globInclude(arg, system)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			f, err := ld.includeFile(rl.pos, p, system, depth+1)
			if err != nil {
				return nil, err
			}
			if f != nil {
				files = append(files, f)
			}
		}
	}
	return files, nil
}

// globInclude turns one Include argument into the sorted list of paths it
// names.
func (ld *loader) globInclude(arg string, system bool) ([]string, error) {
	if strings.HasPrefix(arg, "~") && system {
		return nil, errors.New("bad include path " + strconv.Quote(arg) + ": ~ is not allowed in the system file")
	}
	pattern := arg
	if !filepath.IsAbs(arg) && !strings.HasPrefix(arg, "~") {
		if system {
			pattern = "/etc/ssh/" + arg
		} else {
			pattern = "~/.ssh/" + arg
		}
	}
	pattern, err := tildeExpand(pattern, ld.home)
	if err != nil {
		return nil, err
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, errors.New("bad glob " + strconv.Quote(arg) + ": " + err.Error())
	}
	return hideDotfiles(pattern, matches), nil
}

// hideDotfiles drops matches where a wildcard matched a leading '.' of a
// name, which glob(3) never does and filepath.Glob does.
func hideDotfiles(pattern string, matches []string) []string {
	pparts := strings.Split(pattern, "/")
	var out []string
	for _, m := range matches {
		mparts := strings.Split(m, "/")
		ok := len(mparts) == len(pparts)
		for i := 0; ok && i < len(mparts); i++ {
			if strings.HasPrefix(mparts[i], ".") && !strings.HasPrefix(pparts[i], ".") {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// includeFile reads and parses one included file; a directory or a file
// that vanished is skipped (nil, nil).
func (ld *loader) includeFile(at Pos, path string, system bool, depth int) (*file, error) {
	if depth > maxIncludeDepth {
		return nil, &Error{Pos: at, Msg: "Include nesting deeper than " + strconv.Itoa(maxIncludeDepth) + " (an Include loop?): " + path}
	}
	ld.nfiles++
	if ld.nfiles > maxIncludedFiles {
		return nil, &Error{Pos: at, Msg: "more than " + strconv.Itoa(maxIncludedFiles) + " included files (an Include loop?)"}
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.IsDir() {
		return nil, nil
	}
	if err == nil {
		err = checkPerm(fi)
	}
	var data []byte
	if err == nil {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, &Error{Pos: at, Msg: "Include " + path + ": " + errText(err)}
	}
	return ld.parse(path, data, system, depth)
}

// checkPerm applies OpenSSH's rule for included files: owned by root or
// the current user, not writable by group or others.
func checkPerm(fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return errors.New("bad permissions: remove group and other write access (chmod go-w)")
	}
	if uid, ok := fileOwner(fi); ok && uid != 0 && uid != os.Getuid() {
		return errors.New("bad owner: the file must belong to root or to you")
	}
	return nil
}
