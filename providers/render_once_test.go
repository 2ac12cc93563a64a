package providers

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
)

// TestTemplateRenderedOncePerInstance: one host, one run, one rendering.
// A template whose every rendering differs (a counter here, the time in
// real policies) is rendered once for a resource instance: the probe, the
// check, the apply and the re-check after apply (the engine runs the same
// probe script again and checks with the same Request) see the same
// bytes, and the re-check finds nothing to do. Also when the Request is
// copied before its first use: the copy shares the Memo.
func TestTemplateRenderedOncePerInstance(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Provider
		spec func(path string) any
		copy bool
	}{
		{"template", mustProvider("template"), func(p string) any { return &TemplateSpec{Src: "stamp.tmpl", Path: p} }, false},
		{"file with template", mustProvider("file"), func(p string) any { return &FileSpec{Path: p, Template: "stamp.tmpl", State: "present"} }, false},
		{"template, request copied", mustProvider("template"), func(p string) any { return &TemplateSpec{Src: "stamp.tmpl", Path: p} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			d := newLocalDir(t)
			target := d.path("stamp")
			req := newReq(tc.spec(target), t.TempDir(), nil, nil)
			renders := 0
			req.Render = func(string) ([]byte, error) {
				renders++
				return []byte(fmt.Sprintf("rendering %d\n", renders)), nil
			}
			script, err := tc.p.Probe(req)
			if err != nil {
				t.Fatalf("probe: %v", err)
			}
			run := func() connection.Result {
				res, err := d.h.Run(ctx, script, nil)
				if err != nil {
					t.Fatalf("run probe: %v", err)
				}
				return res
			}
			checkReq := req
			if tc.copy {
				c := *req
				checkReq = &c
			}
			ch, err := tc.p.Check(checkReq, run())
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if ch.Action != Create || !strings.Contains(ch.Diff, "+rendering 1") {
				t.Fatalf("check: got action %q diff %q; want create with +rendering 1", ch.Action, ch.Diff)
			}
			if _, err := tc.p.Apply(ctx, d.h, checkReq, ch); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if got, _ := os.ReadFile(target); string(got) != "rendering 1\n" {
				t.Errorf("uploaded: got %q; want the bytes diffed, %q", got, "rendering 1\n")
			}
			again, err := tc.p.Check(checkReq, run())
			if err != nil {
				t.Fatalf("re-check: %v", err)
			}
			if again.Changed() {
				t.Errorf("re-check: got action %q fields %v; want none (did not converge)", again.Action, again.Fields)
			}
			if renders != 1 {
				t.Errorf("renders: got %d; want 1 per instance", renders)
			}
		})
	}
}

// TestMemoRequired: a Request without a Memo is a caller's bug, reported
// as such instead of rendering the template again at every call.
func TestMemoRequired(t *testing.T) {
	req := newReq(&FileSpec{Path: "/nonexistent/x", Content: ptr("x")}, "", nil, nil)
	req.Memo = nil
	_, err := mustProvider("file").Check(req, connection.Result{Stdout: []byte("type=absent\n")})
	if err == nil || !strings.Contains(err.Error(), "no Memo") {
		t.Fatalf("got %v; want an error saying the request has no Memo", err)
	}
}
