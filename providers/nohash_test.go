package providers

// Hosts without a hash tool (no sha256sum, openssl or shasum): file and
// template read the file back and hash it here, so check shows the real
// change, apply converges and drift is found; over the read-back limit
// check fails with a *NoHashError before anything is written.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
)

// noHashSubnet is TestNoHashLab's lab block (127.31.0.0/16).
const noHashSubnet = 31

// noHashSizes are the sizes every case is tried with: empty, one byte,
// either side of the 64 KiB diff limit, and 1 MiB (the prelude's hash
// limit).
var noHashSizes = []int{0, 1, 64<<10 - 1, 64<<10 + 1, 1 << 20}

// hashToolNames are the tools hashScript looks for.
func hashToolNames() []string {
	var n []string
	for _, t := range hashTools() {
		n = append(n, t[0])
	}
	return n
}

// hideHashToolsScript removes the hash tools from every directory of a
// lab host's PATH, as root inside the host's mount namespace. /usr (and
// so /bin, /sbin, /usr/local/bin on a merged-/usr system) is an overlay
// whose upper directory is the host's own: rm leaves a whiteout there,
// and the machine's files are untouched.
func hideHashToolsScript() string {
	return "for n in " + strings.Join(hashToolNames(), " ") + `; do for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do rm -f "$d/$n"; done; done`
}

// textOf returns n bytes of text lines (letters, digits, spaces: nothing
// a template would interpret, no '#').
func textOf(n int) []byte {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %06d the quick brown fox jumps over the lazy dog\n", i)
	}
	return []byte(b.String()[:n])
}

// binaryOf returns n bytes holding NULs and every byte value.
func binaryOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 % 251)
	}
	return b
}

// checkAll probes reqs in one Batch, as the engine does (with the
// ProbePrelude when they look at two or more paths), and checks each; it
// also returns each probe's stdout size.
func checkAll(ctx context.Context, h Host, provs []Provider, reqs []*Request) ([]*Change, []error, []int, error) {
	var b Batch
	for i, r := range reqs {
		script, err := provs[i].Probe(r)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("probe %d: %w", i, err)
		}
		b.Add(provs[i], r, script)
	}
	sent, err := h.RunProbes(ctx, b.Probes())
	if err != nil {
		return nil, nil, nil, err
	}
	res, err := b.Results(sent)
	if err != nil {
		return nil, nil, nil, err
	}
	chs := make([]*Change, len(reqs))
	errs := make([]error, len(reqs))
	outs := make([]int, len(reqs))
	for i, r := range reqs {
		chs[i], errs[i] = provs[i].Check(r, res[i])
		outs[i] = len(res[i].Stdout)
	}
	return chs, errs, outs, nil
}

// checkOne is checkAll for one request.
func checkOne(ctx context.Context, h Host, p Provider, req *Request) (*Change, int, error) {
	chs, errs, outs, err := checkAll(ctx, h, []Provider{p}, []*Request{req})
	if err != nil {
		return nil, 0, err
	}
	return chs[0], outs[0], errs[0]
}

// noHashCase is one resource of the matrix: a kind and the wanted bytes.
type noHashCase struct {
	kind string // "content", "src" or "template"
	data []byte
}

// spec writes the case's local source into src and returns the
// provider and spec for path p.
func (c noHashCase) spec(t *testing.T, src, p string, limit int64) (Provider, any) {
	t.Helper()
	name := path.Base(p)
	switch c.kind {
	case "content":
		s := string(c.data)
		return adapt[FileSpec]("file", fileProvider{readBackMax: limit}), &FileSpec{Path: p, Content: &s}
	case "src":
		if err := os.WriteFile(filepath.Join(src, name), c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		return adapt[FileSpec]("file", fileProvider{readBackMax: limit}), &FileSpec{Path: p, Src: name}
	case "template":
		if err := os.WriteFile(filepath.Join(src, name+".tmpl"), c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		return adapt[TemplateSpec]("template", templateProvider{readBackMax: limit}), &TemplateSpec{Path: p, Src: name + ".tmpl"}
	}
	t.Fatalf("unknown kind %q", c.kind)
	return nil, nil
}

// noHashCases is the matrix: file with content (text), file with src
// (binary) and template (text), at every size of noHashSizes.
func noHashCases() map[string]noHashCase {
	m := map[string]noHashCase{}
	for _, n := range noHashSizes {
		m[fmt.Sprintf("content-%d", n)] = noHashCase{"content", textOf(n)}
		m[fmt.Sprintf("src-%d", n)] = noHashCase{"src", binaryOf(n)}
		m[fmt.Sprintf("template-%d", n)] = noHashCase{"template", textOf(n)}
	}
	return m
}

// hostEvals answers host.name (NoHashError names the host).
func hostEvals(name string) map[string]func(map[string]any) any {
	return map[string]func(map[string]any) any{"host.name": func(map[string]any) any { return name }}
}

// driftScript changes one byte of the file p of size n (appends one to an
// empty file), as root on the host.
func driftScript(p string, want []byte) string {
	if len(want) == 0 {
		return "printf x >> " + shell.Quote(p)
	}
	mid := len(want) / 2
	return fmt.Sprintf(`printf '\%03o' | dd of=%s bs=1 seek=%d conv=notrunc 2>/dev/null`, want[mid]^0x01, shell.Quote(p), mid)
}

// lineAt is the line of b holding byte i, without its newline.
func lineAt(b []byte, i int) string {
	start := strings.LastIndexByte(string(b[:i]), '\n') + 1
	end := len(b)
	if j := strings.IndexByte(string(b[i:]), '\n'); j >= 0 {
		end = i + j
	}
	return string(b[start:end])
}

// drifted is want with driftScript applied.
func drifted(want []byte) []byte {
	if len(want) == 0 {
		return []byte("x")
	}
	d := append([]byte(nil), want...)
	d[len(d)/2] ^= 0x01
	return d
}

// TestNoHashLab runs file and template on a lab host whose login user
// finds no hash tool (removed from the host's /usr overlay) over the
// real SSH connection (persistent shell, SFTP uploads): for each size
// of noHashSizes check reports the change without touching the host,
// apply writes it, a second check is clean, one changed byte is found
// (with its real sum, and a diff for text up to 64 KiB) and repaired. Over
// the read-back limit (4 KiB here instead of 64 MiB) check fails with a
// *NoHashError naming host, path and what to install, and writes nothing,
// while a host with sha256sum converges. Converged probes' output is
// measured: a read-back costs the file's size, a host with a hash tool
// gets no contents.
func TestNoHashLab(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: noHashSubnet, Hosts: []lab.HostSpec{{Name: "nohash"}, {Name: "withhash"}}})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const dir = "/srv/nohash"
	for _, name := range []string{"nohash", "withhash"} {
		if out, err := l.Host(name).Exec(ctx, "mkdir -p "+dir+" && chown deploy: "+dir); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	if out, err := l.Host("nohash").Exec(ctx, hideHashToolsScript()); err != nil {
		t.Fatalf("hide hash tools: %v: %s", err, out)
	}
	for _, n := range hashToolNames() {
		if _, err := exec.LookPath(n); err != nil {
			t.Logf("%s is not installed on this machine either", n)
		}
	}
	k := newLabKit(t, ctx, l)
	nohash, withhash := k.connect(t, "nohash", "deploy", ""), k.connect(t, "withhash", "deploy", "")

	// The login user must find no hash tool on nohash, and all on withhash.
	find := "for n in " + strings.Join(hashToolNames(), " ") + "; do command -v $n || :; done"
	if res, err := nohash.Run(ctx, find, nil); err != nil || len(res.Stdout) != 0 {
		t.Fatalf("hash tools still found by deploy on nohash: %q (err %v)", res.Stdout, err)
	}
	if res, err := withhash.Run(ctx, find, nil); err != nil || strings.Count(string(res.Stdout), "\n") != len(hashToolNames()) {
		t.Fatalf("withhash: got %q (err %v); want every hash tool found", res.Stdout, err)
	}
	root := func(name, script string) string {
		t.Helper()
		out, err := l.Host(name).Exec(ctx, script)
		if err != nil {
			t.Fatalf("%s: %s: %v: %s", name, script, err, out)
		}
		return string(out)
	}
	// snap lists the directory with ctime and a checksum per file (cksum:
	// not one of the hidden tools).
	snap := func(name string) string {
		return root(name, "cd "+dir+" && ls -la --time-style=full-iso && for f in *; do [ -f \"$f\" ] && cksum \"$f\"; stat -c '%n %z' \"$f\"; done; true")
	}
	src := t.TempDir()

	cases := noHashCases()
	var names []string
	for _, n := range noHashSizes {
		for _, k := range []string{"content", "src", "template"} {
			names = append(names, fmt.Sprintf("%s-%d", k, n))
		}
	}
	var allProvs []Provider
	var allReqs []*Request
	for _, name := range names {
		c := cases[name]
		t.Run(name, func(t *testing.T) {
			p := dir + "/" + name
			prov, spec := c.spec(t, src, p, 0)
			req := newReq(spec, src, nil, hostEvals("nohash"))
			allProvs, allReqs = append(allProvs, prov), append(allReqs, req)

			before := snap("nohash")
			ch, _, err := checkOne(ctx, nohash, prov, req)
			if err != nil {
				t.Fatalf("first check: %v", err)
			}
			if after := snap("nohash"); after != before {
				t.Fatalf("check changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if ch.Action != Create {
				t.Fatalf("first check: got %s %v; want create", ch.Action, ch.Fields)
			}
			if _, err := prov.Apply(ctx, nohash, req, ch); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if got := root("nohash", "cat "+shell.Quote(p)); got != string(c.data) {
				t.Fatalf("after apply: got %d bytes on the host; want the %d wanted", len(got), len(c.data))
			}
			start := time.Now()
			ch, out, err := checkOne(ctx, nohash, prov, req)
			took := time.Since(start)
			if err != nil || ch.Changed() {
				t.Fatalf("second check: got %v, %v; want no change", ch, err)
			}
			if out < len(c.data) {
				t.Errorf("converged probe output: got %d bytes; want at least the file's %d (read back)", out, len(c.data))
			}
			t.Logf("nohash: converged check of %d bytes: probe output %d bytes, %v", len(c.data), out, took)

			// Drift: one byte changed on the host.
			root("nohash", driftScript(p, c.data))
			ch, _, err = checkOne(ctx, nohash, prov, req)
			if err != nil {
				t.Fatalf("check after drift: %v", err)
			}
			if ch.Action != Update {
				t.Fatalf("check after drift: got %s %v; want update", ch.Action, ch.Fields)
			}
			wantField := shortSum(sha256Hex(drifted(c.data))) + " -> " + shortSum(sha256Hex(c.data))
			if got := fieldMap(ch)["content"]; got != wantField {
				t.Errorf("content after drift: got %q; want %q (the host's real sum)", got, wantField)
			}
			switch wantDiff := isText(c.data) && isText(drifted(c.data)); {
			case wantDiff && ch.Diff == "":
				t.Errorf("drift of a text file of %d bytes: no diff (message %q)", len(c.data), ch.Message)
			case wantDiff && len(c.data) > 0 && (!strings.Contains(ch.Diff, "\n-"+lineAt(drifted(c.data), len(c.data)/2)) || !strings.Contains(ch.Diff, "\n+"+lineAt(c.data, len(c.data)/2))):
				t.Errorf("drift diff does not show the changed line %q:\n%s", lineAt(c.data, len(c.data)/2), ch.Diff)
			case !wantDiff && ch.Diff != "":
				t.Errorf("drift of %d bytes (binary): got a diff; want none", len(c.data))
			}
			if _, err := prov.Apply(ctx, nohash, req, ch); err != nil {
				t.Fatalf("repair: %v", err)
			}
			if ch, _, err := checkOne(ctx, nohash, prov, req); err != nil || ch.Changed() {
				t.Fatalf("check after repair: got %v, %v; want no change", ch, err)
			}
			if got := root("nohash", "cat "+shell.Quote(p)); got != string(c.data) {
				t.Fatalf("after repair: got %d bytes on the host; want the %d wanted", len(got), len(c.data))
			}

			// The same file on a host with sha256sum: no contents come back.
			wreq := newReq(spec, src, nil, hostEvals("withhash"))
			ch, _, err = checkOne(ctx, withhash, prov, wreq)
			if err != nil {
				t.Fatalf("withhash: first check: %v", err)
			}
			if _, err := prov.Apply(ctx, withhash, wreq, ch); err != nil {
				t.Fatalf("withhash: apply: %v", err)
			}
			start = time.Now()
			ch, out, err = checkOne(ctx, withhash, prov, wreq)
			took = time.Since(start)
			if err != nil || ch.Changed() {
				t.Fatalf("withhash: second check: got %v, %v; want no change", ch, err)
			}
			if out > 256 {
				t.Errorf("withhash: converged probe output: got %d bytes; want no contents (at most 256)", out)
			}
			t.Logf("withhash: converged check of %d bytes: probe output %d bytes, %v", len(c.data), out, took)
		})
	}

	t.Run("batch", func(t *testing.T) {
		// Every file in one round trip, with the prelude (whose
		// sha256sum is missing too).
		if len(allReqs) != len(names) {
			t.Skipf("only %d of %d cases got this far", len(allReqs), len(names))
		}
		chs, errs, outs, err := checkAll(ctx, nohash, allProvs, allReqs)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i := range chs {
			if errs[i] != nil || chs[i].Changed() {
				t.Errorf("%s: got %v, %v; want no change", names[i], chs[i], errs[i])
			}
			total += outs[i]
		}
		t.Logf("nohash: one batch of %d converged files: probe output %d bytes", len(chs), total)
	})

	t.Run("over-limit", func(t *testing.T) {
		const limit = 4 << 10
		for _, kind := range []string{"content", "template"} {
			t.Run(kind, func(t *testing.T) {
				c := noHashCase{kind, textOf(limit + 1)}
				for _, exists := range []bool{false, true} {
					p := fmt.Sprintf("%s/limit-%s-%v", dir, kind, exists)
					prov, spec := c.spec(t, src, p, limit)
					if exists {
						// Same size: only a hash could tell.
						root("nohash", "printf %s "+shell.Quote(string(c.data[:limit]))+"X > "+shell.Quote(p))
					}
					before := snap("nohash")
					_, _, err := checkOne(ctx, nohash, prov, newReq(spec, src, nil, hostEvals("nohash")))
					var nh *NoHashError
					if !errors.As(err, &nh) {
						t.Fatalf("exists=%v: check: got %v; want a *NoHashError", exists, err)
					}
					if nh.Host != "nohash" || nh.Path != p || nh.Size != limit+1 || nh.Limit != limit {
						t.Errorf("exists=%v: got %+v; want host nohash, path %s, size %d, limit %d", exists, *nh, p, limit+1, limit)
					}
					for _, w := range []string{"host nohash", p, "sha256sum", "install"} {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("exists=%v: error %q does not mention %q", exists, err, w)
						}
					}
					if after := snap("nohash"); after != before {
						t.Errorf("exists=%v: check changed the host:\nbefore:\n%s\nafter:\n%s", exists, before, after)
					}
				}
				// At the limit it is read back; with sha256sum the limit
				// does not apply.
				p := fmt.Sprintf("%s/limit-%s", dir, kind)
				prov, spec := noHashCase{kind, textOf(limit)}.spec(t, src, p+"-at", limit)
				converge(t, nohash, prov, newReq(spec, src, nil, hostEvals("nohash")), func() string { return snap("nohash") }, Create)
				prov, spec = c.spec(t, src, p+"-over", limit)
				converge(t, withhash, prov, newReq(spec, src, nil, hostEvals("withhash")), func() string { return snap("withhash") }, Create)
			})
		}
	})
	if _, err := os.Stat("/usr/bin/sha256sum"); err != nil {
		if _, lerr := exec.LookPath("sha256sum"); lerr == nil {
			t.Errorf("sha256sum vanished from this machine's /usr/bin (%v): the lab host was not isolated", err)
		}
	}
}

// pathHost is a local Host whose scripts see only the tools linked into
// bin (its PATH), for tests of hosts that lack some.
type pathHost struct {
	*connection.Local
	bin string
}

func (h *pathHost) Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error) {
	return h.Local.Run(ctx, "PATH="+shell.Quote(h.bin)+"; export PATH\n"+script, stdin)
}

func (h *pathHost) RunProbes(ctx context.Context, probes []connection.Probe) ([]connection.Result, error) {
	return runEach(ctx, h.Run, probes)
}

// newPathHost links tools (found on this machine's PATH) into a fresh
// bin directory; fake maps more names to script bodies (sh).
func newPathHost(t *testing.T, tools []string, fake map[string]string) *pathHost {
	t.Helper()
	bin := t.TempDir()
	for _, n := range tools {
		p, err := exec.LookPath(n)
		if err != nil {
			t.Fatalf("%s: %v (needed by the probes)", n, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	for n, body := range fake {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!"+sh+"\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &pathHost{Local: &connection.Local{CommandTimeout: 30 * time.Second}, bin: bin}
}

// TestNoHashReadBack runs file's probe in a local sh that finds no hash
// tool (and one whose sha256sum is broken): check, apply, clean re-check
// and drift at the read-back limit, a *NoHashError one byte over it (set
// to 100 bytes here), with nothing written; and with sha256sum present
// the limit does not apply.
func TestNoHashReadBack(t *testing.T) {
	const limit = 100
	probeTools := []string{"stat", "cat", "head", "tr", "wc"}
	hosts := map[string]*pathHost{
		"no tool":          newPathHost(t, probeTools, nil),
		"broken sha256sum": newPathHost(t, probeTools, map[string]string{"sha256sum": "echo broken >&2; exit 1"}),
	}
	prov := adapt[FileSpec]("file", fileProvider{readBackMax: limit})
	for name, h := range hosts {
		t.Run(name, func(t *testing.T) {
			d := newLocalDir(t)
			for i, data := range [][]byte{nil, textOf(1), textOf(limit), binaryOf(limit)} {
				p := d.path(fmt.Sprintf("f%d", i))
				s := string(data)
				req := newReq(&FileSpec{Path: p, Content: &s}, "", nil, hostEvals("local"))
				snap := func() string { return d.snapshot(t) }
				converge(t, h, prov, req, snap, Create)
				if err := os.WriteFile(p, drifted(data), 0o644); err != nil {
					t.Fatal(err)
				}
				ch, err := check(t, testCtx(t), h, prov, req)
				if err != nil {
					t.Fatalf("check after drift: %v", err)
				}
				want := shortSum(sha256Hex(drifted(data))) + " -> " + shortSum(sha256Hex(data))
				if got := fieldMap(ch)["content"]; ch.Action != Update || got != want {
					t.Errorf("check after drift: got %s content %q; want update %q", ch.Action, got, want)
				}
				converge(t, h, prov, req, snap, Update)
			}

			p := d.path("over")
			over := string(textOf(limit + 1))
			for _, exists := range []bool{false, true} {
				if exists {
					if err := os.WriteFile(p, textOf(limit+1), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				before := d.snapshot(t)
				_, err := check(t, testCtx(t), h, prov, newReq(&FileSpec{Path: p, Content: &over}, "", nil, hostEvals("local")))
				var nh *NoHashError
				if !errors.As(err, &nh) || nh.Host != "local" || nh.Path != p || nh.Size != limit+1 || nh.Limit != limit {
					t.Fatalf("exists=%v: got %v; want a *NoHashError for host local, %s, %d > %d bytes", exists, err, p, limit+1, limit)
				}
				if after := d.snapshot(t); after != before {
					t.Errorf("exists=%v: check changed the directory", exists)
				}
			}
		})
	}
	// A failing sha256sum gives way to openssl: no read-back, no limit.
	t.Run("broken sha256sum, openssl", func(t *testing.T) {
		h := newPathHost(t, append(probeTools, "openssl"), map[string]string{"sha256sum": "exit 1"})
		d := newLocalDir(t)
		over := string(binaryOf(limit + 1))
		req := newReq(&FileSpec{Path: d.path("over"), Content: &over}, "", nil, nil)
		converge(t, h, prov, req, func() string { return d.snapshot(t) }, Create)
		res, err := h.Run(testCtx(t), mustProbe(t, prov, req), nil)
		if err != nil || strings.Contains(string(res.Stdout), "blob=") || !strings.Contains(string(res.Stdout), "sha256="+sha256Hex([]byte(over))) {
			t.Errorf("probe of an unchanged file: got %q, %v; want openssl's sum and no contents", res.Stdout, err)
		}
	})
	// A sha256sum that prints something else fails the check loudly
	// rather than never converging.
	t.Run("lying sha256sum", func(t *testing.T) {
		h := newPathHost(t, probeTools, map[string]string{"sha256sum": "echo 'sha256sum: unsupported'"})
		d := newLocalDir(t)
		content := "x\n"
		if err := os.WriteFile(d.path("f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := check(t, testCtx(t), h, prov, newReq(&FileSpec{Path: d.path("f"), Content: &content}, "", nil, nil))
		if err == nil || !strings.Contains(err.Error(), "not a sha256") {
			t.Errorf("got %v; want an error saying the tool printed no sha256", err)
		}
	})
	t.Run("with sha256sum", func(t *testing.T) {
		h := newPathHost(t, append(probeTools, "sha256sum"), nil)
		d := newLocalDir(t)
		over := string(binaryOf(limit + 1))
		req := newReq(&FileSpec{Path: d.path("over"), Content: &over}, "", nil, nil)
		converge(t, h, prov, req, func() string { return d.snapshot(t) }, Create)
		res, err := h.Run(testCtx(t), mustProbe(t, prov, req), nil)
		if err != nil || strings.Contains(string(res.Stdout), "blob=") {
			t.Errorf("probe of an unchanged file with sha256sum: got %q, %v; want no contents", res.Stdout, err)
		}
	})
}

func mustProbe(t *testing.T, p Provider, req *Request) string {
	t.Helper()
	s, err := p.Probe(req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNoHashErrorMessage: the error names host, path, both sizes and what
// to install, and "the host" when the name is unknown.
func TestNoHashErrorMessage(t *testing.T) {
	tests := []struct {
		err  *NoHashError
		want string
	}{
		{&NoHashError{Host: "web1", Path: "/srv/big.iso", Size: 70 << 20, Limit: readBackMax},
			"host web1 has no working sha256sum, openssl or shasum to compare /srv/big.iso, and its 73400320 bytes (70.0 MiB) of contents exceed the 67108864 bytes (64.0 MiB) opsmop reads back to hash itself: install coreutils (sha256sum), openssl or perl (shasum) on host web1"},
		{&NoHashError{Path: "/x", Size: 101, Limit: 100},
			"the host has no working sha256sum, openssl or shasum to compare /x, and its 101 bytes of contents exceed the 100 bytes opsmop reads back to hash itself: install coreutils (sha256sum), openssl or perl (shasum) on the host"},
	}
	for _, tt := range tests {
		t.Run(tt.err.Path, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

// TestTemplateRendersEmpty: a template that renders to nothing converges
// to an empty file (its empty rendering is contents, not a src to open).
func TestTemplateRendersEmpty(t *testing.T) {
	d := newLocalDir(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "empty.tmpl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	req := newReq(&TemplateSpec{Path: d.path("empty"), Src: "empty.tmpl"}, src, nil, nil)
	converge(t, d.h, mustProvider("template"), req, func() string { return d.snapshot(t) }, Create)
	if got := readFile(t, d.path("empty")); got != "" {
		t.Errorf("got %q; want an empty file", got)
	}
}
