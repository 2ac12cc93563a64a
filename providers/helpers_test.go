package providers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/opsmop/opsmop/connection"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// localDir is a scratch directory on the local host.
type localDir struct {
	dir string
	h   *connection.Local
}

func newLocalDir(t *testing.T) *localDir {
	t.Helper()
	d := t.TempDir()
	// t.TempDir is 0700; let nobody read it so ownership tests are honest.
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return &localDir{dir: d, h: &connection.Local{CommandTimeout: 30 * time.Second}}
}

func (l *localDir) path(p string) string { return filepath.Join(l.dir, p) }

// snapshot describes every entry below dir: type, mode, owner, link
// target and content hash, so that "check did not touch the target" can
// be asserted.
func (l *localDir) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(l.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(l.dir, p)
		fmt.Fprintf(&b, "%s %v %d:%d mtime=%d", rel, fi.Mode(), st.Uid, st.Gid, fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", tg)
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			s := sha256.Sum256(c)
			fmt.Fprintf(&b, " %s", hex.EncodeToString(s[:8]))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return b.String()
}

// newReq builds a Request for spec whose Open and Render read files below
// srcDir (Render runs text/template with vars) and whose Eval consults
// evals.
func newReq(spec any, srcDir string, vars map[string]any, evals map[string]func(map[string]any) any) *Request {
	return &Request{
		Spec:  spec,
		Facts: map[string]any{},
		Memo:  new(Memo),
		Eval: func(expr string, extra map[string]any) (any, error) {
			f, ok := evals[expr]
			if !ok {
				return nil, fmt.Errorf("test evaluator: unknown expression %q", expr)
			}
			return f(extra), nil
		},
		Render: func(p string) ([]byte, error) {
			b, err := os.ReadFile(filepath.Join(srcDir, p))
			if err != nil {
				return nil, err
			}
			tm, err := template.New(p).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return nil, err
			}
			var out bytes.Buffer
			if err := tm.Execute(&out, vars); err != nil {
				return nil, err
			}
			return out.Bytes(), nil
		},
		Open: func(p string) (io.ReadCloser, int64, error) {
			f, err := os.Open(filepath.Join(srcDir, p))
			if err != nil {
				return nil, 0, err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, err
			}
			return f, fi.Size(), nil
		},
	}
}

// check runs the provider's probe on h and checks.
func check(t *testing.T, ctx context.Context, h Host, p Provider, req *Request) (*Change, error) {
	t.Helper()
	script, err := p.Probe(req)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	var res connection.Result
	if script != "" {
		if res, err = h.Run(ctx, script, nil); err != nil {
			return nil, fmt.Errorf("run probe: %w", err)
		}
	}
	return p.Check(req, res)
}

// converge is the provider contract test (ENGINEERING.md §4): check on
// the fresh target reports want; the check did not touch the target
// (snap unchanged); apply succeeds; a second check reports nothing
// (unless again is set: then the second check must report again, for
// resources that always run). It returns the first change.
func converge(t *testing.T, h Host, p Provider, req *Request, snap func() string, want Action) *Change {
	t.Helper()
	return convergeAgain(t, h, p, req, snap, want, None)
}

func convergeAgain(t *testing.T, h Host, p Provider, req *Request, snap func() string, want, again Action) *Change {
	t.Helper()
	ctx := testCtx(t)
	before := snap()
	ch, err := check(t, ctx, h, p, req)
	if err != nil {
		t.Fatalf("first check: %v", err)
	}
	if after := snap(); after != before {
		t.Fatalf("check changed the target:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if ch.Action != want {
		t.Fatalf("first check: got action %q (fields %v, message %q); want %q", ch.Action, ch.Fields, ch.Message, want)
	}
	if !ch.Changed() {
		return ch
	}
	if _, err := p.Apply(ctx, h, req, ch); err != nil {
		t.Fatalf("apply: %v", err)
	}
	ch2, err := check(t, ctx, h, p, req)
	if err != nil {
		t.Fatalf("second check: %v", err)
	}
	if ch2.Action != again {
		t.Fatalf("second check: got action %q (fields %v, diff %q); want %q", ch2.Action, ch2.Fields, ch2.Diff, again)
	}
	return ch
}

// fieldMap returns name → "before -> after".
func fieldMap(ch *Change) map[string]string {
	m := map[string]string{}
	for _, f := range ch.Fields {
		m[f.Name] = f.Before + " -> " + f.After
	}
	return m
}

// fakeHost records scripts and uploads and answers with canned results:
// the first rule whose substring occurs in the script wins; no match is
// exit 0 with no output.
type fakeHost struct {
	rules   []fakeRule
	scripts []string
	stdins  []string
	uploads []fakeUpload
}

type fakeRule struct {
	contains string
	res      connection.Result
}

type fakeUpload struct {
	dst  string
	data []byte
	opts connection.UploadOptions
}

func (f *fakeHost) on(contains string, stdout string, rc int) *fakeHost {
	f.rules = append(f.rules, fakeRule{contains, connection.Result{Stdout: []byte(stdout), ExitCode: rc}})
	return f
}

func (f *fakeHost) Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error) {
	f.scripts = append(f.scripts, script)
	in := ""
	if stdin != nil {
		b, _ := io.ReadAll(stdin)
		in = string(b)
	}
	f.stdins = append(f.stdins, in)
	for _, r := range f.rules {
		if strings.Contains(script, r.contains) {
			return r.res, nil
		}
	}
	return connection.Result{}, nil
}

func (f *fakeHost) Upload(ctx context.Context, dst string, r io.Reader, size int64, opts connection.UploadOptions) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	f.uploads = append(f.uploads, fakeUpload{dst, b, opts})
	return nil
}

// sortedFieldNames lists a change's field names, sorted.
func sortedFieldNames(ch *Change) []string {
	var n []string
	for _, f := range ch.Fields {
		n = append(n, f.Name)
	}
	sort.Strings(n)
	return n
}

func ptr[T any](v T) *T { return &v }
