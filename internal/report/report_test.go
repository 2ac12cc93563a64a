package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// synth writes synthetic --json streams.
type synth struct {
	t     *testing.T
	now   time.Time
	lines []string
}

func newSynth(t *testing.T, start map[string]any) *synth {
	s := &synth{t: t, now: time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)}
	ev := map[string]any{"type": "run_start", "mode": "apply", "hosts": 1, "tasks": 1}
	for k, v := range start {
		ev[k] = v
	}
	s.emit(ev)
	return s
}

// emit appends ev, stamped with the synthetic clock.
func (s *synth) emit(ev map[string]any) {
	s.t.Helper()
	if d, ok := ev["duration_s"].(float64); ok && ev["type"] != "host_end" && ev["type"] != "summary" {
		s.now = s.now.Add(time.Duration(d * float64(time.Second)))
	}
	ev["time"] = s.now.Format(time.RFC3339Nano)
	b, err := json.Marshal(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	s.lines = append(s.lines, string(b))
}

// host emits one host's role with n resources; changed ones update
// /etc/motd the same way everywhere, and a failing one when fail.
func (s *synth) host(name, role string, n int, fail bool) map[string]any {
	s.emit(map[string]any{"type": "host_start", "host": name, "role": role})
	s.emit(map[string]any{"type": "phase", "host": name, "role": role, "phase": "connect", "duration_s": 0.2})
	s.emit(map[string]any{"type": "phase", "host": name, "role": role, "phase": "facts", "duration_s": 0.05})
	st := map[string]any{"ok": 0, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0, "ignored": 0}
	s.emit(map[string]any{"type": "phase", "host": name, "role": role, "phase": "probe", "count": n, "duration_s": 0.03})
	for i := range n {
		ev := map[string]any{"type": "resource", "host": name, "role": role, "resource_type": "file", "duration_s": 0.01}
		switch {
		case fail && i == n-1:
			ev["resource"] = "shell[false]"
			ev["status"] = "failed"
			ev["error"] = "exit status 1"
			ev["stderr"] = "nope\n"
			st["failed"] = st["failed"].(int) + 1
		case i%5 == 0:
			ev["resource"] = fmt.Sprintf("file[/etc/app/%d.conf]", i)
			ev["status"] = "changed"
			ev["change"] = map[string]any{"action": "update", "fields": []map[string]string{{"name": "mode", "before": "0600", "after": "0644"}},
				"diff": fmt.Sprintf("--- /etc/app/%d.conf\n+++ /etc/app/%d.conf\n@@ -1 +1 @@\n-port = 80\n+port = 8080\n", i, i)}
			st["changed"] = st["changed"].(int) + 1
		default:
			ev["resource"] = fmt.Sprintf("directory[/srv/d%d]", i)
			ev["status"] = "ok"
			ev["change"] = map[string]any{"action": "none"}
			st["ok"] = st["ok"].(int) + 1
		}
		s.emit(ev)
		if ev["status"] == "changed" {
			s.emit(map[string]any{"type": "phase", "host": name, "role": role, "phase": "probe", "count": 1, "recheck": true, "duration_s": 0.005})
		}
	}
	s.emit(map[string]any{"type": "host_end", "host": name, "role": role, "duration_s": 0.5, "stats": st})
	return st
}

// finish emits the summary of hosts and returns the stream.
func (s *synth) finish(hosts map[string]map[string]any) string {
	s.emit(map[string]any{"type": "summary", "duration_s": 1.5, "summary": map[string]any{"mode": "apply", "hosts": hosts, "duration_s": 1.5}})
	return strings.Join(s.lines, "\n") + "\n"
}

// write writes content to a file in dir.
func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// render reads, merges and renders the files.
func render(t *testing.T, files ...string) (*Run, string, error) {
	t.Helper()
	var streams []*Stream
	for _, f := range files {
		st, err := ReadFile(f)
		if err != nil {
			return nil, "", err
		}
		streams = append(streams, st)
	}
	run, err := Merge(streams)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if err := Render(&buf, run); err != nil {
		t.Fatal(err)
	}
	return run, buf.String(), nil
}

const digest = "3f5a9c0e1b2d4f6a8c0e1b2d4f6a8c0e1b2d4f6a8c0e1b2d4f6a8c0e1b2d4f6a"

// slice returns the stream of slice k/2 with hosts.
func slice(t *testing.T, k int, hosts ...string) string {
	s := newSynth(t, map[string]any{"version": 2, "policy": "/p/site.toml", "policy_sha256": digest, "slice": fmt.Sprintf("%d/2", k)})
	sum := map[string]map[string]any{}
	for i, h := range hosts {
		sum[h] = s.host(h, "web", 6, i == 0 && k == 2)
	}
	return s.finish(sum)
}

func TestMergeSlices(t *testing.T) {
	dir := t.TempDir()
	s1 := write(t, dir, "s1.json", slice(t, 1, "web1", "web2"))
	s2 := write(t, dir, "s2.json", slice(t, 2, "web3", "web4"))
	run, html, err := render(t, s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range run.Hosts {
		names = append(names, h.Name+"="+h.Status)
	}
	if got, want := strings.Join(names, " "), "web1=changed web2=changed web3=failed web4=changed"; got != want {
		t.Errorf("hosts: got %s; want %s", got, want)
	}
	if run.Total.Failed != 1 || run.Total.Changed != 7 || len(run.Slices) != 2 {
		t.Errorf("total %+v, slices %v; want 1 failed, 7 changed, 2 slices", run.Total, run.Slices)
	}
	if len(run.Failures) != 1 || run.Failures[0].Host != "web3" || run.Failures[0].Stderr != "nope\n" {
		t.Errorf("failures: got %+v; want web3's shell[false]", run.Failures)
	}
	if !run.HasPhases || !strings.Contains(html, `class="p-connect"`) || !strings.Contains(html, `class="p-recheck"`) {
		t.Errorf("no connect or re-check bars in the timeline of a version 2 stream")
	}
	// Failures come before the recap, the recap before the changes.
	if f, r, c := strings.Index(html, `id="failures"`), strings.Index(html, `id="recap"`), strings.Index(html, `id="changes"`); !(f >= 0 && f < r && r < c) {
		t.Errorf("sections at %d (failures), %d (recap), %d (changes); want failures first, then recap, then changes", f, r, c)
	}

	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"a slice missing", []string{s1}, "slices 2/2 are missing"},
		{"a slice twice", []string{s1, s1}, "are both slice 1/2"},
		{"a host twice", []string{s1, write(t, dir, "s2b.json", slice(t, 2, "web2"))}, "host web2 is in"},
		{"another policy", []string{s1, write(t, dir, "s2c.json", strings.ReplaceAll(slice(t, 2, "web3"), digest, strings.Repeat("0", 64)))}, "ran another policy"},
		{"another mode", []string{s1, write(t, dir, "s2d.json", strings.Replace(slice(t, 2, "web3"), `"mode":"apply"`, `"mode":"check"`, 1))}, "merge streams of one command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := render(t, tc.files...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestReadRefusesCutStreams(t *testing.T) {
	whole := slice(t, 1, "web1")
	lines := strings.Split(strings.TrimSuffix(whole, "\n"), "\n")
	n := len(lines)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"no summary", strings.Join(lines[:n-1], "\n") + "\n", fmt.Sprintf("cut.json:%d: truncated: the stream ends with a host_end event, not the summary", n-1)},
		{"cut mid-line", whole[:len(whole)-40], fmt.Sprintf("cut.json:%d: not an opsmop --json event (the stream is cut", n)},
		{"no run_start", strings.Join(lines[1:], "\n"), "cut.json:1: the stream starts with a host_start event, not run_start"},
		{"empty", "", "cut.json: empty"},
		{"two runs", whole + whole, fmt.Sprintf("cut.json:%d: a second run_start", n+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := write(t, t.TempDir(), "cut.json", tc.content)
			_, err := ReadFile(f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error with %q", err, tc.want)
			}
		})
	}
}

// TestOldStreams: streams of version 0 (no version) and 1 (no phase
// events) render, without phase bars.
func TestOldStreams(t *testing.T) {
	for _, v := range []int{0, 1} {
		t.Run(fmt.Sprint("version ", v), func(t *testing.T) {
			start := map[string]any{}
			if v > 0 {
				start = map[string]any{"version": v, "policy": "/p/site.toml", "policy_sha256": digest}
			}
			s := newSynth(t, start)
			st := s.host("h1", "base", 6, false)
			var kept []string
			for _, l := range s.lines {
				if !strings.Contains(l, `"type":"phase"`) {
					kept = append(kept, l)
				}
			}
			s.lines = kept
			run, html, err := render(t, write(t, t.TempDir(), "old.json", s.finish(map[string]map[string]any{"h1": st})))
			if err != nil {
				t.Fatal(err)
			}
			if run.HasPhases || strings.Contains(html, `class="p-`) || !strings.Contains(html, `class="s-changed"`) {
				t.Errorf("version %d: got phases %v; want resource bars and no phase bars", v, run.HasPhases)
			}
			if !strings.Contains(html, "streams before version 2 carry no connect") {
				t.Errorf("version %d: the legend does not say why there are no phase bars", v)
			}
		})
	}
}

func TestGroupsIdenticalChanges(t *testing.T) {
	s := newSynth(t, map[string]any{"version": 2, "policy_sha256": digest})
	sum := map[string]map[string]any{}
	for i := range 48 {
		h := fmt.Sprintf("web%02d", i)
		sum[h] = s.host(h, "web", 6, false)
	}
	// One host changed /etc/app/0.conf another way.
	odd := s.host("odd", "web", 1, false)
	sum["odd"] = odd
	last := s.lines[len(s.lines)-3]
	s.lines[len(s.lines)-3] = strings.Replace(last, `+port = 8080`, `+port = 9090`, 1)
	run, html, err := render(t, write(t, t.TempDir(), "g.json", s.finish(sum)))
	if err != nil {
		t.Fatal(err)
	}
	var g *ChangeGroup
	for i := range run.Changes {
		if run.Changes[i].Resource == "file[/etc/app/0.conf]" {
			g = &run.Changes[i]
		}
	}
	if g == nil {
		t.Fatalf("no change group of file[/etc/app/0.conf] in %+v", run.Changes)
	}
	if len(g.Variants) != 2 || len(g.Variants[0].Hosts) != 48 || len(g.Variants[1].Hosts) != 1 || g.Variants[1].Hosts[0] != "odd" || g.Hosts != 49 {
		t.Errorf("got %d variants (%d hosts); want one of 48 hosts and one of odd", len(g.Variants), g.Hosts)
	}
	if n := strings.Count(html, "&#43;port = 8080"); n != 2 {
		t.Errorf("the diff of the 48 identical changes shows %d times; want 2 (once per resource, 0.conf and 5.conf)", n)
	}
	if !strings.Contains(html, "<details><summary>web00 and 48 more</summary>") {
		t.Errorf("the list of 48 hosts is not folded")
	}
}

// TestHostileText: host names, roles, paths, messages and diffs from the
// stream are text in the page, never markup or script.
func TestHostileText(t *testing.T) {
	hostile := []string{
		`</script><script>alert(1)</script>`,
		`<img src=x onerror=alert(2)>`,
		`"><svg onload=alert(3)>`,
		`javascript:alert(4)`,
		"</title></rect><script>alert(5)</script>",
		"x\u2028y</style><script>alert(6)</script>",
	}
	s := newSynth(t, map[string]any{"version": 2, "policy": hostile[0], "policy_sha256": digest})
	sum := map[string]map[string]any{}
	for i, h := range hostile {
		role := hostile[(i+1)%len(hostile)]
		path := hostile[(i+2)%len(hostile)]
		s.emit(map[string]any{"type": "host_start", "host": h, "role": role})
		s.emit(map[string]any{"type": "phase", "host": h, "role": role, "phase": "connect", "duration_s": 0.1})
		s.emit(map[string]any{"type": "resource", "host": h, "role": role, "resource": "file[" + path + "]", "status": "changed", "duration_s": 0.1,
			"change": map[string]any{"action": "update", "fields": []map[string]string{{"name": path, "before": h, "after": role}}, "diff": "--- a\n+++ b\n@@ -1 +1 @@\n-" + h + "\n+" + path + "\n", "message": role}})
		s.emit(map[string]any{"type": "resource", "host": h, "role": role, "resource": "shell[" + path + "]", "status": "failed", "duration_s": 0.1,
			"error": h, "message": role, "stdout": path, "stderr": h})
		s.emit(map[string]any{"type": "notice", "role": role, "message": path})
		sum[h] = map[string]any{"changed": 1, "failed": 1}
	}
	s.emit(map[string]any{"type": hostile[1], "host": hostile[2]})
	_, html, err := render(t, write(t, t.TempDir(), "h.json", s.finish(sum)))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>alert", "<img", "<svg onload", `"><svg`, `href="javascript`, "</title></rect><script", "</style><script>"} {
		if strings.Contains(html, bad) {
			i := strings.Index(html, bad)
			t.Errorf("the page holds %q unescaped: …%s…", bad, html[max(0, i-80):min(len(html), i+80)])
		}
	}
	// The page's only script is its own filter code.
	if n := strings.Count(html, "<script"); n != 1 {
		t.Errorf("got %d <script elements; want 1 (the filters)", n)
	}
	// The hostile strings are there, as text.
	if !strings.Contains(html, "&lt;img src=x onerror=alert(2)&gt;") {
		t.Errorf("the hostile host name is not shown as escaped text")
	}
	if !strings.Contains(html, "events of types this opsmop does not know were not shown: 1 &lt;img") {
		t.Errorf("the unknown event type is not noted")
	}
}

// TestLargeRun: a synthetic run of 500 hosts x 20 resources renders to
// a page of sane size.
func TestLargeRun(t *testing.T) {
	s := newSynth(t, map[string]any{"version": 2, "policy": "/p/site.toml", "policy_sha256": digest, "hosts": 500})
	sum := map[string]map[string]any{}
	for i := range 500 {
		h := fmt.Sprintf("host%03d.example.org", i)
		role := []string{"web", "db", "cache"}[i%3]
		sum[h] = s.host(h, role, 20, i%50 == 7)
		s.now = s.now.Add(-490 * time.Millisecond) // hosts overlap, as with forks
	}
	dir := t.TempDir()
	f := write(t, dir, "big.json", s.finish(sum))
	fi, _ := os.Stat(f)
	began := time.Now()
	run, html, err := render(t, f)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	t.Logf("500 hosts x 20 resources: stream %.1f MB, page %.2f MB, read+merge+render %v", float64(fi.Size())/1e6, float64(len(html))/1e6, took)
	if out := os.Getenv("OPSMOP_REPORT_BIG"); out != "" {
		if err := os.WriteFile(out, []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(run.Hosts) != 500 || len(run.Failures) != 10 {
		t.Errorf("got %d hosts, %d failures; want 500, 10", len(run.Hosts), len(run.Failures))
	}
	if len(html) > 15<<20 {
		t.Errorf("page of %d bytes; want under 15 MB", len(html))
	}
	if n := strings.Count(html, "-port = 80\n"); n > 10 {
		t.Errorf("the identical diff shows %d times; want it once per resource (4)", n)
	}
}
