package main

// Docs sweep: the tests here keep docs/cli.md and every opsmop command line
// shown under docs/ in step with the CLI that newApp builds and with the
// exit code constants of cli.go. They read the docs and inspect the app;
// they run no command and contact no host.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/internal/sshconfig"
)

// sweepCLIDoc is the page whose flag and exit code tables are checked.
const sweepCLIDoc = "docs/cli.md"

// sweepApp returns the CLI app as opsmop runs it, set up (urfave/cli's
// Setup adds the global --help and --version flags) but not run.
func sweepApp(t *testing.T) *cli.App {
	t.Helper()
	app := newApp(Env{
		Stdin:  strings.NewReader(""),
		Stdout: io.Discard,
		Stderr: io.Discard,
		Getenv: func(string) string { return "" },
		Home:   t.TempDir(),
	})
	app.Setup()
	return app
}

// sweepFlag is one flag as the code defines it.
type sweepFlag struct {
	name    string   // primary name, without dashes
	aliases []string // without dashes
	value   bool     // takes a value
}

// sweepFlags returns flags by every one of their names (the
// primary name and each alias, without dashes).
func sweepFlags(flags []cli.Flag) map[string]sweepFlag {
	out := map[string]sweepFlag{}
	for _, f := range flags {
		names := f.Names()
		if len(names) == 0 {
			continue
		}
		sf := sweepFlag{name: names[0], aliases: names[1:]}
		if df, ok := f.(cli.DocGenerationFlag); ok {
			sf.value = df.TakesValue()
		}
		for _, n := range names {
			out[n] = sf
		}
	}
	return out
}

// sweepCommandFlags returns the flags a command accepts on the command
// line: its own, and --help/-h, which urfave/cli adds when the command
// runs unless the command hides help.
func sweepCommandFlags(cmd *cli.Command) map[string]sweepFlag {
	flags := cmd.Flags
	if !cmd.HideHelp && cli.HelpFlag != nil {
		flags = append(slices.Clip(flags), cli.HelpFlag)
	}
	return sweepFlags(flags)
}

// sweepDash writes a flag name as the docs do: one dash for one letter,
// two otherwise.
func sweepDash(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// sweepLines returns the lines of a file under the repository root; a
// missing or unreadable file fails the test.
func sweepLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
}

// sweepFence reports whether line opens or closes a fenced code block and,
// if so, returns its fence (the run of ` or ~) and info string (the first
// word after the fence, lowercased).
func sweepFence(line string) (fence, info string, ok bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return "", "", false
	}
	for _, c := range []string{"`", "~"} {
		n := len(s) - len(strings.TrimLeft(s, c))
		if n >= 3 {
			rest := strings.Fields(s[n:])
			if len(rest) > 0 {
				info = strings.ToLower(rest[0])
			}
			return s[:n], info, true
		}
	}
	return "", "", false
}

// sweepBlock is one fenced code block.
type sweepBlock struct {
	info  string
	start int // 1-based line number of the first line inside the block
	lines []string
}

// sweepSplit separates a markdown page into its fenced code blocks and its
// prose; prose keeps one entry per line of the page, "" where the line is
// part of a code block, so line numbers stay right.
func sweepSplit(lines []string) (blocks []sweepBlock, prose []string) {
	prose = make([]string, len(lines))
	var cur *sweepBlock
	var fence string
	for i, line := range lines {
		if cur == nil {
			if f, info, ok := sweepFence(line); ok {
				cur = &sweepBlock{info: info, start: i + 2}
				fence = f
				continue
			}
			prose[i] = line
			continue
		}
		if f, info, ok := sweepFence(line); ok && info == "" && f[0] == fence[0] && len(f) >= len(fence) {
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		cur.lines = append(cur.lines, line)
	}
	if cur != nil { // unterminated: the block runs to the end of the page
		blocks = append(blocks, *cur)
	}
	return blocks, prose
}

// sweepSpans returns the contents of the `code spans` in s.
func sweepSpans(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i+1:], '`')
		if j < 0 {
			return out
		}
		out = append(out, s[i+1:i+1+j])
		s = s[i+1+j+1:]
	}
}

// sweepCells splits a markdown table row into its trimmed cells. A | inside
// a code span or escaped as \| does not separate cells.
func sweepCells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	if strings.HasSuffix(row, "|") && !strings.HasSuffix(row, `\|`) {
		row = row[:len(row)-1]
	}
	var cells []string
	var b strings.Builder
	inCode := false
	for i := 0; i < len(row); i++ {
		c := row[i]
		switch {
		case c == '\\' && i+1 < len(row) && row[i+1] == '|':
			b.WriteByte('|')
			i++
		case c == '`':
			inCode = !inCode
			b.WriteByte(c)
		case c == '|' && !inCode:
			cells = append(cells, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(cells, strings.TrimSpace(b.String()))
}

// sweepDelimiterRow reports whether cells are a table's delimiter row
// (|---|:--:|).
func sweepDelimiterRow(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(c, ":-") != "" || !strings.Contains(c, "-") {
			return false
		}
	}
	return len(cells) > 0
}

// sweepTable is one markdown table of a page.
type sweepTable struct {
	line    int // 1-based line of the header row
	section int // index into the page's sections
	header  []string
	rows    []sweepRow
}

type sweepRow struct {
	line  int
	cells []string
}

// sweepSection is a heading and the text up to the next heading.
type sweepSection struct {
	line     int
	title    string
	commands []string // the app commands the heading names as `code`
}

// sweepPage is a markdown page cut into sections and tables.
type sweepPage struct {
	sections []sweepSection
	tables   []sweepTable
}

// sweepParsePage parses the headings and tables of a page. A heading names
// the commands it holds as code spans (## `check` and `apply`); a deeper
// heading that names none belongs to the commands of the level-2 heading
// above it. Tables are found outside code blocks only.
func sweepParsePage(lines []string, isCommand func(string) bool) sweepPage {
	_, prose := sweepSplit(lines)
	page := sweepPage{sections: []sweepSection{{line: 1, title: "(top)"}}}
	var parent []string // commands of the last level-1/2 heading
	var table *sweepTable
	flush := func() {
		if table != nil {
			page.tables = append(page.tables, *table)
			table = nil
		}
	}
	heading := regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	for i, line := range prose {
		n := i + 1
		if m := heading.FindStringSubmatch(line); m != nil {
			flush()
			var cmds []string
			for _, s := range sweepSpans(m[2]) {
				if isCommand(s) && !slices.Contains(cmds, s) {
					cmds = append(cmds, s)
				}
			}
			if len(m[1]) <= 2 {
				parent = cmds
			} else if len(cmds) == 0 {
				cmds = parent
			}
			page.sections = append(page.sections, sweepSection{line: n, title: m[2], commands: cmds})
			continue
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "|") {
			flush()
			continue
		}
		cells := sweepCells(line)
		switch {
		case table == nil:
			table = &sweepTable{line: n, section: len(page.sections) - 1, header: cells}
		case len(table.rows) == 0 && sweepDelimiterRow(cells):
			// the delimiter row
		default:
			table.rows = append(table.rows, sweepRow{line: n, cells: cells})
		}
	}
	flush()
	return page
}

// sweepColumn returns the index of the header cell named name
// (case-insensitive), or -1.
func sweepColumn(header []string, name string) int {
	for i, h := range header {
		if strings.EqualFold(strings.Trim(h, "`* "), name) {
			return i
		}
	}
	return -1
}

// sweepDocFlag is one row of a flag table, for one command.
type sweepDocFlag struct {
	line    int
	name    string   // as written, without dashes
	arg     string   // the value placeholder (FILE in `--inventory FILE`), or ""
	aliases []string // without dashes
	env     string   // the environment column's variable, or ""
}

// sweepOnly returns the commands a flag table's meaning cell restricts the
// row to ("`check` only: ..."), or nil.
func sweepOnly(meaning string) []string {
	m := regexp.MustCompile("^((?:`[a-z][a-z-]*`(?:\\s*,\\s*|\\s+and\\s+|\\s+or\\s+|\\s*/\\s*)?)+)\\s+only\\b").FindStringSubmatch(meaning)
	if m == nil {
		return nil
	}
	return sweepSpans(m[1])
}

// sweepDocFlags reads the flag tables of docs/cli.md (tables whose first
// header cell is "flag") and returns, for each command, its documented
// flags by name, plus the rows that exclude a command of their section
// ("`check` only" in a `check` and `apply` section): excluded[cmd][name] is
// the row's line. Malformed rows are reported as errors.
func sweepDocFlags(t *testing.T, lines []string, app *cli.App) (page sweepPage, documented map[string]map[string]sweepDocFlag, excluded map[string]map[string]int) {
	t.Helper()
	isCommand := func(s string) bool { return app.Command(s) != nil }
	page = sweepParsePage(lines, isCommand)
	documented = map[string]map[string]sweepDocFlag{}
	excluded = map[string]map[string]int{}
	tables := 0
	for _, tb := range page.tables {
		if sweepColumn(tb.header, "flag") != 0 {
			continue
		}
		tables++
		sec := page.sections[tb.section]
		if len(sec.commands) == 0 {
			t.Errorf("%s:%d: flag table under heading %q, which names no command (want it under a heading such as ## `apply`)", sweepCLIDoc, tb.line, sec.title)
			continue
		}
		aliasCol, meaningCol := sweepColumn(tb.header, "alias"), sweepColumn(tb.header, "meaning")
		envCol := sweepColumn(tb.header, "environment")
		for _, row := range tb.rows {
			var spans []string
			for _, s := range sweepSpans(row.cells[0]) {
				if strings.HasPrefix(s, "-") {
					spans = append(spans, s)
				}
			}
			if len(spans) != 1 {
				t.Errorf("%s:%d: flag cell %q: got %d `--flag` code spans; want 1", sweepCLIDoc, row.line, row.cells[0], len(spans))
				continue
			}
			name, arg, _ := strings.Cut(strings.Join(strings.Fields(spans[0]), " "), " ")
			if n, a, ok := strings.Cut(name, "="); ok {
				name, arg = n, a
			}
			df := sweepDocFlag{line: row.line, name: strings.TrimLeft(name, "-"), arg: arg}
			if aliasCol >= 0 && aliasCol < len(row.cells) {
				cell := row.cells[aliasCol]
				for _, s := range sweepSpans(cell) {
					f := strings.Fields(s)
					if len(f) == 0 || !strings.HasPrefix(f[0], "-") {
						t.Errorf("%s:%d: alias cell %q: %q is not a flag; want `-x` code spans", sweepCLIDoc, row.line, cell, s)
						continue
					}
					df.aliases = append(df.aliases, strings.TrimLeft(f[0], "-"))
				}
				if rest := strings.Trim(regexp.MustCompile("`[^`]*`").ReplaceAllString(cell, ""), " ,/"); rest != "" {
					t.Errorf("%s:%d: alias cell %q: text %q outside code spans; want only `-x` code spans", sweepCLIDoc, row.line, cell, rest)
				}
			}
			if envCol >= 0 && envCol < len(row.cells) {
				if spans := sweepSpans(row.cells[envCol]); len(spans) == 1 {
					df.env = spans[0]
				} else if strings.TrimSpace(row.cells[envCol]) != "" {
					t.Errorf("%s:%d: environment cell %q: want one `VARIABLE` code span or nothing", sweepCLIDoc, row.line, row.cells[envCol])
				}
			}
			applies := sec.commands
			if meaningCol >= 0 && meaningCol < len(row.cells) {
				if only := sweepOnly(row.cells[meaningCol]); only != nil {
					for _, c := range only {
						if !slices.Contains(sec.commands, c) {
							t.Errorf("%s:%d: flag --%s is documented as `%s` only, but this section is for %s", sweepCLIDoc, row.line, df.name, c, strings.Join(sec.commands, ", "))
						}
					}
					applies = only
				}
			}
			for _, c := range sec.commands {
				if !slices.Contains(applies, c) {
					if excluded[c] == nil {
						excluded[c] = map[string]int{}
					}
					excluded[c][df.name] = row.line
					continue
				}
				if documented[c] == nil {
					documented[c] = map[string]sweepDocFlag{}
				}
				if prev, dup := documented[c][df.name]; dup {
					t.Errorf("%s:%d: command %s: flag --%s is documented twice (also line %d)", sweepCLIDoc, row.line, c, df.name, prev.line)
					continue
				}
				documented[c][df.name] = df
			}
		}
	}
	if tables == 0 {
		t.Fatalf("%s: found no flag table (| flag | alias | meaning |); the page or this parser changed", sweepCLIDoc)
	}
	return page, documented, excluded
}

// TestDocsCLIFlagTables checks the flag tables of docs/cli.md against the
// app: for every command, every flag it defines (with each alias, and with
// a value placeholder exactly when it takes a value) is in the flag table of
// the section that names the command, and every flag documented there is
// defined on that command. --help/-h, which every command has, is
// documented once, not in the tables, and is not expected there.
func TestDocsCLIFlagTables(t *testing.T) {
	app := sweepApp(t)
	lines := sweepLines(t, sweepCLIDoc)
	page, documented, excluded := sweepDocFlags(t, lines, app)

	for _, cmd := range app.Commands {
		t.Run(cmd.Name, func(t *testing.T) {
			secLine := 0
			for _, s := range page.sections {
				if slices.Contains(s.commands, cmd.Name) {
					secLine = s.line
					break
				}
			}
			if secLine == 0 {
				t.Errorf("%s: command %s has no section; want a heading naming `%s`", sweepCLIDoc, cmd.Name, cmd.Name)
			}
			where := fmt.Sprintf("%s:%d", sweepCLIDoc, secLine)
			if secLine == 0 {
				where = sweepCLIDoc
			}
			defined := sweepFlags(cmd.Flags)
			docs := documented[cmd.Name]

			// defined -> documented
			var seen []string
			for _, f := range cmd.Flags {
				names := f.Names()
				if len(names) == 0 || slices.Contains(seen, names[0]) {
					continue
				}
				seen = append(seen, names[0])
				def := defined[names[0]]
				df, ok := docs[def.name]
				if !ok {
					if line, ex := excluded[cmd.Name][def.name]; ex {
						t.Errorf("%s:%d: command %s: flag --%s is documented as not for %s but is defined on it", sweepCLIDoc, line, cmd.Name, def.name, cmd.Name)
						continue
					}
					t.Errorf("%s: command %s: flag --%s is defined but not documented", where, cmd.Name, def.name)
					continue
				}
				for _, a := range def.aliases {
					if !slices.Contains(df.aliases, a) {
						t.Errorf("%s:%d: command %s: flag --%s: alias %s is defined but not documented", sweepCLIDoc, df.line, cmd.Name, def.name, sweepDash(a))
					}
				}
				for _, a := range df.aliases {
					if !slices.Contains(def.aliases, a) {
						t.Errorf("%s:%d: command %s: flag --%s: alias %s is documented but not defined", sweepCLIDoc, df.line, cmd.Name, def.name, sweepDash(a))
					}
				}
				if want := flagEnvVars()[def.name]; df.env != want {
					t.Errorf("%s:%d: command %s: flag --%s: environment variable %q documented; want %q (flags.go:flagEnvVars)", sweepCLIDoc, df.line, cmd.Name, def.name, df.env, want)
				}
				switch {
				case def.value && df.arg == "":
					t.Errorf("%s:%d: command %s: flag --%s takes a value but is documented without one; want `--%s VALUE`", sweepCLIDoc, df.line, cmd.Name, def.name, def.name)
				case !def.value && df.arg != "":
					t.Errorf("%s:%d: command %s: flag --%s takes no value but is documented with one (%s)", sweepCLIDoc, df.line, cmd.Name, def.name, df.arg)
				}
			}

			// documented -> defined
			var names []string
			for n := range docs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				df := docs[n]
				def, ok := defined[n]
				switch {
				case !ok:
					t.Errorf("%s:%d: command %s: flag --%s is documented but not defined", sweepCLIDoc, df.line, cmd.Name, n)
				case def.name != n:
					t.Errorf("%s:%d: command %s: flag --%s is documented as a flag but is an alias of --%s", sweepCLIDoc, df.line, cmd.Name, n, def.name)
				}
			}
		})
	}
}

// TestDocsGlobalFlags checks the sentence of docs/cli.md that lists the
// global flags ("The only global flags are ...") against the flags of the
// app itself (before any command).
func TestDocsGlobalFlags(t *testing.T) {
	app := sweepApp(t)
	lines := sweepLines(t, sweepCLIDoc)
	_, prose := sweepSplit(lines)
	start := -1
	var para []string
	for i, l := range prose {
		if start < 0 && strings.Contains(l, "global flags") {
			start = i
		}
		if start >= 0 {
			if strings.TrimSpace(l) == "" {
				break
			}
			para = append(para, l)
		}
	}
	if start < 0 {
		t.Fatalf("%s: no paragraph mentions the global flags; want one listing them", sweepCLIDoc)
	}
	text := strings.Join(para, " ")
	text = text[strings.Index(text, "global flags"):]
	if end := regexp.MustCompile(`\.(\s|$)`).FindStringIndex(text); end != nil {
		text = text[:end[0]] // the first sentence only
	}
	documented := map[string]bool{}
	for _, s := range sweepSpans(text) {
		if strings.HasPrefix(s, "-") {
			documented[strings.TrimLeft(strings.Fields(s)[0], "-")] = true
		}
	}
	defined := sweepFlags(app.Flags)
	for n, f := range defined {
		if !documented[n] {
			t.Errorf("%s:%d: global flag %s (of --%s) is defined but not documented", sweepCLIDoc, start+1, sweepDash(n), f.name)
		}
	}
	for n := range documented {
		if _, ok := defined[n]; !ok {
			t.Errorf("%s:%d: global flag %s is documented but not defined", sweepCLIDoc, start+1, sweepDash(n))
		}
	}
}

// sweepShellWords splits a shell command line into words as sh would for a
// simple command: quotes and backslashes are honoured and removed, and the
// command ends at the first unquoted ; | & < > ( ) or at a # that starts a
// word. On an unterminated quote it returns the words before the quote
// with an error.
func sweepShellWords(line string) ([]string, error) {
	var words []string
	var b strings.Builder
	inWord := false
	end := func() {
		if inWord {
			words = append(words, b.String())
			b.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			end()
		case strings.IndexByte(";|&<>()", c) >= 0:
			end()
			return words, nil
		case c == '#' && !inWord:
			return words, nil
		case c == '\\':
			if i+1 < len(line) {
				i++
				b.WriteByte(line[i])
			}
			inWord = true
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return words, fmt.Errorf("unterminated ' quote")
			}
			b.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				}
				b.WriteByte(line[i])
			}
			if i >= len(line) {
				return words, fmt.Errorf("unterminated \" quote")
			}
			inWord = true
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	end()
	return words, nil
}

// sweepPlaceholder reports whether a word stands for something (COMMAND,
// HOST...) rather than being literal.
func sweepPlaceholder(w string) bool {
	return regexp.MustCompile(`^[A-Z][A-Z0-9_]*(\.\.\.)?$`).MatchString(w)
}

// sweepCheckLine checks one opsmop command line (its words, "opsmop"
// first) against the app as run would parse it after reorderArgs: global
// flags before the command, then the command, then its flags anywhere
// among the positional arguments up to "--". needValues says that a flag
// that takes a value must be given one (not so for a flag merely named in
// prose, `opsmop inventory -i`). It returns the problems found; positional
// arguments are not checked. "[-i" and "FILE]" (optional parts of a
// synopsis) are read as -i and FILE. The pseudo-command help (opsmop help
// [COMMAND]), which newApp's Action answers, takes only arguments.
func sweepCheckLine(app *cli.App, words []string, needValues bool) []string {
	var problems []string
	i := 1
	flagWord := func(w string) (string, bool) {
		w = strings.TrimPrefix(w, "[")
		if strings.HasPrefix(w, "-") && w != "-" && w != "--" {
			return strings.TrimRight(w, "]"), true
		}
		return "", false
	}
	// checkFlag reads the flag w (words[i]) against flags and moves i past
	// its value; who names whose flags they are.
	checkFlag := func(w string, flags map[string]sweepFlag, who string) {
		name, _, hasVal := strings.Cut(strings.TrimLeft(w, "-"), "=")
		f, ok := flags[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not a flag of %s", sweepDash(name), who))
			return
		}
		if f.value && !hasVal {
			if i+1 < len(words) {
				i++ // its value
			} else if needValues {
				problems = append(problems, fmt.Sprintf("flag %s of %s needs a value", sweepDash(name), who))
			}
		}
	}
	global := sweepFlags(app.Flags)
	for ; i < len(words); i++ {
		w, ok := flagWord(words[i])
		if !ok {
			break
		}
		checkFlag(w, global, "opsmop itself (a global flag, before the command)")
	}
	if i >= len(words) || words[i] == "--" {
		return problems
	}
	name := words[i]
	i++
	var flags map[string]sweepFlag
	var who string
	switch {
	case name == "help" && app.Command("help") == nil && app.Action != nil:
		return problems
	case sweepPlaceholder(name):
		// Any command: a flag must be one every command has.
		var common map[string]sweepFlag
		for _, c := range app.Commands {
			cf := sweepCommandFlags(c)
			if common == nil {
				common = cf
				continue
			}
			for n := range common {
				if _, ok := cf[n]; !ok {
					delete(common, n)
				}
			}
		}
		flags, who = common, "every command (for "+name+")"
	default:
		cmd := app.Command(name)
		if cmd == nil {
			var names []string
			for _, c := range app.Commands {
				names = append(names, c.Name)
			}
			return append(problems, fmt.Sprintf("unknown command %q; the commands: %s", name, strings.Join(names, ", ")))
		}
		flags, who = sweepCommandFlags(cmd), cmd.Name
	}
	for ; i < len(words); i++ {
		if words[i] == "--" {
			break
		}
		if w, ok := flagWord(words[i]); ok {
			checkFlag(w, flags, who)
		}
	}
	return problems
}

// sweepShellInfo reports whether a code block's info string marks it as
// shell or plain text (whose opsmop lines are command lines) rather than a
// file format or program.
func sweepShellInfo(info string) bool {
	switch info {
	case "", "sh", "bash", "zsh", "shell", "console", "shell-session", "text", "txt":
		return true
	}
	return false
}

// sweepDocFiles returns every markdown file under docs/.
func sweepDocFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("docs", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk docs: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("no docs/**/*.md found")
	}
	sort.Strings(files)
	return files
}

// TestDocsCommandLines checks every opsmop command line shown in a code
// block of the docs: the command exists and every flag used on it (or
// before it, as a global flag) is one it has, and a flag that takes a value
// is given one. In a block with "$ " prompts, the command lines are the
// prompted ones and the rest is output; in a block without, every line
// starting with "opsmop " is a command line. Blocks of file formats (toml,
// yaml, json, go, ...) hold no command lines. The lines are not run.
func TestDocsCommandLines(t *testing.T) {
	app := sweepApp(t)
	total := 0
	for _, file := range sweepDocFiles(t) {
		blocks, _ := sweepSplit(sweepLines(t, file))
		t.Run(strings.TrimPrefix(file, "docs/"), func(t *testing.T) {
			for _, b := range blocks {
				if !sweepShellInfo(b.info) {
					continue
				}
				prompted := false
				for _, l := range b.lines {
					if strings.HasPrefix(strings.TrimSpace(l), "$ ") {
						prompted = true
					}
				}
				for k := 0; k < len(b.lines); k++ {
					n := b.start + k
					l := strings.TrimSpace(b.lines[k])
					if prompted {
						if !strings.HasPrefix(l, "$ ") {
							continue
						}
						l = strings.TrimSpace(l[2:])
					}
					if l != "opsmop" && !strings.HasPrefix(l, "opsmop ") {
						continue
					}
					for strings.HasSuffix(l, `\`) && k+1 < len(b.lines) { // continued
						k++
						l = strings.TrimSuffix(l, `\`) + " " + strings.TrimSpace(b.lines[k])
					}
					total++
					// A prompted line is shell; an unprompted one may be a
					// synopsis whose description has an apostrophe (one
					// host's settings): its words before that are checked.
					words, err := sweepShellWords(l)
					if err != nil && prompted {
						t.Errorf("%s:%d: %s: %v", file, n, l, err)
						continue
					}
					for _, p := range sweepCheckLine(app, words, true) {
						t.Errorf("%s:%d: %s: %s", file, n, l, p)
					}
				}
			}
		})
	}
	if total == 0 {
		t.Fatal("found no opsmop command line in the docs' code blocks; the docs or this test's parser changed")
	}
}

// TestDocsInlineCommandLines checks, as TestDocsCommandLines does, every
// opsmop command line written as a code span in the docs' prose (`opsmop
// apply --limit 'web*' site.toml`, possibly broken over two lines), except
// that a flag may be named without its value (`opsmop inventory -i`).
func TestDocsInlineCommandLines(t *testing.T) {
	app := sweepApp(t)
	span := regexp.MustCompile("`(opsmop(?:[ \n][^`]*)?)`")
	for _, file := range sweepDocFiles(t) {
		_, prose := sweepSplit(sweepLines(t, file))
		t.Run(strings.TrimPrefix(file, "docs/"), func(t *testing.T) {
			// Paragraphs: runs of non-blank prose lines; a table row is a
			// paragraph of its own, so spans never cross rows.
			blank := func(l string) bool { return strings.TrimSpace(l) == "" }
			row := func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "|") }
			for i := 0; i < len(prose); {
				if blank(prose[i]) {
					i++
					continue
				}
				start := i
				if row(prose[i]) {
					i++
				} else {
					for i < len(prose) && !blank(prose[i]) && !row(prose[i]) {
						i++
					}
				}
				para := strings.Join(prose[start:i], "\n")
				// Skip ``double`` spans and the like: only single backticks
				// delimit the spans read here.
				for _, m := range span.FindAllStringSubmatchIndex(para, -1) {
					if m[0] > 0 && para[m[0]-1] == '`' || m[1] < len(para) && para[m[1]] == '`' {
						continue
					}
					n := start + 1 + strings.Count(para[:m[0]], "\n")
					l := strings.Join(strings.Fields(para[m[2]:m[3]]), " ")
					words, err := sweepShellWords(l)
					if err != nil {
						t.Errorf("%s:%d: `%s`: %v", file, n, l, err)
						continue
					}
					for _, p := range sweepCheckLine(app, words, false) {
						t.Errorf("%s:%d: `%s`: %s", file, n, l, p)
					}
				}
			}
		})
	}
}

// TestDocsFlagsAnywhere backs the promise of docs/cli.md that flags may come
// before or after the policy file: reorderArgs moves a flag's value along
// with it only for the flags isValueFlag names, so isValueFlag must be true
// for exactly the flags (by every name) that take a value, on every
// command, given that command's flags.
func TestDocsFlagsAnywhere(t *testing.T) {
	app := sweepApp(t)
	for _, cmd := range app.Commands {
		t.Run(cmd.Name, func(t *testing.T) {
			for _, f := range cmd.Flags {
				value := false
				if df, ok := f.(cli.DocGenerationFlag); ok {
					value = df.TakesValue()
				}
				for _, n := range f.Names() {
					if got := isValueFlag(cmd.Flags, sweepDash(n)); got != value {
						t.Errorf("isValueFlag(%s flags, %q) = %v; want %v (%s %s takes a value: %v)", cmd.Name, sweepDash(n), got, value, cmd.Name, sweepDash(n), value)
					}
				}
			}
		})
	}
}

// TestDocsExitCodes checks the exit code table of docs/cli.md (the table
// under "## Exit codes") against the exit* constants of cli.go: every
// constant's code is documented, with a meaning that says what it is, and
// every documented code is one of them.
func TestDocsExitCodes(t *testing.T) {
	// Every exit code constant, with a word its documented meaning must
	// contain.
	type exitConst struct {
		name string
		code int
		word string
	}
	tests := []exitConst{
		{"exitOK", exitOK, "success"},
		{"exitFailed", exitFailed, "failed"},
		{"exitPending", exitPending, "pending"},
		{"exitInvalid", exitInvalid, "invalid"},
		{"exitInterrupted", exitInterrupted, "interrupted"},
	}

	// A new exit* constant in cli.go must be added above (and documented).
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "cli.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse cli.go: %v", err)
	}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			for _, id := range s.(*ast.ValueSpec).Names {
				if !strings.HasPrefix(id.Name, "exit") {
					continue
				}
				if !slices.ContainsFunc(tests, func(tt exitConst) bool { return tt.name == id.Name }) {
					t.Errorf("%s: exit code constant %s is not in TestDocsExitCodes; add it there and to the exit codes table of %s", fset.Position(id.Pos()), id.Name, sweepCLIDoc)
				}
			}
		}
	}

	lines := sweepLines(t, sweepCLIDoc)
	page := sweepParsePage(lines, func(string) bool { return false })
	type docCode struct {
		line    int
		meaning string
	}
	var codes map[int]docCode
	for _, tb := range page.tables {
		if !strings.EqualFold(page.sections[tb.section].title, "Exit codes") {
			continue
		}
		codeCol, meaningCol := sweepColumn(tb.header, "code"), sweepColumn(tb.header, "meaning")
		if codeCol < 0 || meaningCol < 0 {
			t.Errorf("%s:%d: exit codes table header %q; want | code | meaning |", sweepCLIDoc, tb.line, tb.header)
			continue
		}
		codes = map[int]docCode{}
		for _, row := range tb.rows {
			if codeCol >= len(row.cells) || meaningCol >= len(row.cells) {
				t.Errorf("%s:%d: exit codes row has %d cells; want at least %d", sweepCLIDoc, row.line, len(row.cells), max(codeCol, meaningCol)+1)
				continue
			}
			c, err := strconv.Atoi(strings.Trim(row.cells[codeCol], "` "))
			if err != nil {
				t.Errorf("%s:%d: exit code %q is not a number", sweepCLIDoc, row.line, row.cells[codeCol])
				continue
			}
			if prev, dup := codes[c]; dup {
				t.Errorf("%s:%d: exit code %d is documented twice (also line %d)", sweepCLIDoc, row.line, c, prev.line)
				continue
			}
			codes[c] = docCode{line: row.line, meaning: row.cells[meaningCol]}
		}
	}
	if codes == nil {
		t.Fatalf("%s: no table under a heading \"Exit codes\"", sweepCLIDoc)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dc, ok := codes[tt.code]
			if !ok {
				t.Errorf("%s: exit codes table: code %d (%s in cli.go) is not documented", sweepCLIDoc, tt.code, tt.name)
				return
			}
			if !strings.Contains(strings.ToLower(dc.meaning), tt.word) {
				t.Errorf("%s:%d: exit code %d (%s): got meaning %q; want it to say %q", sweepCLIDoc, dc.line, tt.code, tt.name, dc.meaning, tt.word)
			}
		})
	}
	var documented []int
	for c := range codes {
		documented = append(documented, c)
	}
	sort.Ints(documented)
	for _, c := range documented {
		if !slices.ContainsFunc(tests, func(tt exitConst) bool { return tt.code == c }) {
			t.Errorf("%s:%d: exit code %d is documented but cli.go has no exit constant with that value", sweepCLIDoc, codes[c].line, c)
		}
	}
}

// TestDocsSSHConfigKeywords checks that docs/ssh.md names every OpenSSH
// client keyword in the section of its class (internal/sshconfig's
// Keywords): honoured, refused, ignored.
func TestDocsSSHConfigKeywords(t *testing.T) {
	b, err := os.ReadFile("docs/ssh.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	section := func(start, end string) string {
		i := strings.Index(doc, start)
		j := strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("docs/ssh.md: no section from %q to %q", start, end)
		}
		return doc[i:j]
	}
	sections := map[string]string{
		sshconfig.ClassHonoured:    section("**Honoured keywords**", "**Refused keywords.**"),
		sshconfig.ClassUnsupported: section("**Refused keywords.**", "**Ignored keywords.**"),
		sshconfig.ClassIgnored:     section("**Ignored keywords.**", "## Host keys"),
	}
	for _, k := range sshconfig.Keywords() {
		text, ok := sections[k.Class]
		if !ok {
			t.Errorf("keyword %s: class %q has no section in docs/ssh.md", k.Name, k.Class)
			continue
		}
		if !regexp.MustCompile("`" + regexp.QuoteMeta(k.Name) + "`").MatchString(text) {
			t.Errorf("docs/ssh.md: %s keyword %s is not listed in its section", k.Class, k.Name)
		}
	}
}
