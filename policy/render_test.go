package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// loadOne loads a one-role YAML policy and returns the role.
func loadOne(t *testing.T, src string) *Role {
	t.Helper()
	p, err := loadBytes("site.yaml", []byte(src), testRegistry(), memFS(nil))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p.Roles[0]
}

// fakeRender replaces "{{ name }}" by vars[name] and records its calls.
type fakeRender struct {
	vars  map[string]string
	calls []string
}

func (f *fakeRender) render(s string) (string, error) {
	f.calls = append(f.calls, s)
	for k, v := range f.vars {
		s = strings.ReplaceAll(s, "{{ "+k+" }}", v)
	}
	if strings.Contains(s, "{{") {
		return "", errors.New("undefined variable in " + s)
	}
	return s, nil
}

func TestRender(t *testing.T) {
	role := loadOne(t, `
roles:
  - name: web
    resources:
      - type: directory
        path: "/srv/{{ app }}"
        mode: "{{ mode }}"
        recurse: "{{ flag }}"
        when: "{{ not rendered }}"
        label: "dir {{ app }}"
        vars: {x: "{{ app }}", n: 1}
      - type: shell
        cmd: "echo {{ app }}"
        changed_when: "'{{ expr }}' in out"
        loop: ["{{ loop item }}"]
        until: "{{ until }}"
      - type: directory
        path: /plain
      - type: directory
        path: "{{ bad }}"
      - type: directory
        path: /x
        state: "{{ state }}"
    handlers:
      - name: "restart {{ app }}"
        type: service
        service: "{{ app }}"
`)
	reg := testRegistry()
	vars := map[string]string{"app": "shop", "mode": "0750", "flag": "true", "state": "gone"}

	t.Run("strings and lenient types", func(t *testing.T) {
		f := &fakeRender{vars: vars}
		got, err := role.Resources[0].Render(reg, f.render)
		if err != nil {
			t.Fatal(err)
		}
		want := &directorySpec{Path: "/srv/shop", Mode: "0750", State: "present", Recurse: true}
		if !reflect.DeepEqual(got.Spec, want) {
			t.Errorf("spec: got %+v; want %+v", got.Spec, want)
		}
		if got.When != "{{ not rendered }}" {
			t.Errorf("when: got %q; want it unrendered", got.When)
		}
		if got.Label != "dir shop" {
			t.Errorf("label: got %q; want dir shop", got.Label)
		}
		if !reflect.DeepEqual(got.Vars, map[string]any{"x": "shop", "n": 1}) {
			t.Errorf("vars: got %v; want map[n:1 x:shop]", got.Vars)
		}
		if got.Path != "roles[0].resources[0]" || got.Pos != role.Resources[0].Pos {
			t.Errorf("path/pos: got %q %v; want the original's", got.Path, got.Pos)
		}
		// The original is untouched.
		if orig := role.Resources[0].Spec.(*directorySpec); orig.Path != "/srv/{{ app }}" {
			t.Errorf("original spec changed: got %q", orig.Path)
		}
		if got := role.Resources[0].Raw.Get("path").Value; got != "/srv/{{ app }}" {
			t.Errorf("original raw changed: got %q", got)
		}
		if len(f.calls) != 5 {
			t.Errorf("render calls: got %d %q; want 5 (path, mode, recurse, label, vars.x)", len(f.calls), f.calls)
		}
	})

	t.Run("expression keys left alone", func(t *testing.T) {
		f := &fakeRender{vars: vars}
		got, err := role.Resources[1].Render(reg, f.render)
		if err != nil {
			t.Fatal(err)
		}
		want := &shellSpec{Cmd: "echo shop", ChangedWhen: "'{{ expr }}' in out"}
		if !reflect.DeepEqual(got.Spec, want) {
			t.Errorf("spec: got %+v; want %+v", got.Spec, want)
		}
		if !reflect.DeepEqual(got.Loop, &Loop{Items: []any{"{{ loop item }}"}}) || got.Until != "{{ until }}" {
			t.Errorf("loop/until: got %v %q; want them unrendered", got.Loop, got.Until)
		}
		if !reflect.DeepEqual(f.calls, []string{"echo {{ app }}"}) {
			t.Errorf("render calls: got %q; want only the cmd", f.calls)
		}
	})

	t.Run("nothing to render", func(t *testing.T) {
		f := &fakeRender{vars: vars}
		orig := role.Resources[2]
		got, err := orig.Render(reg, f.render)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.calls) != 0 {
			t.Errorf("render calls: got %q; want none", f.calls)
		}
		if got == orig || got.Spec != orig.Spec {
			t.Errorf("got %p (spec %p); want a new Resource sharing the spec %p", got, got.Spec, orig.Spec)
		}
	})

	t.Run("render error carries position", func(t *testing.T) {
		f := &fakeRender{vars: vars}
		_, err := role.Resources[3].Render(reg, f.render)
		want := "site.yaml:20: roles[0].resources[3].path: undefined variable in {{ bad }}"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v; want %q", err, want)
		}
	})

	t.Run("rendered value re-validated", func(t *testing.T) {
		f := &fakeRender{vars: vars}
		_, err := role.Resources[4].Render(reg, f.render)
		want := `site.yaml:23: roles[0].resources[4].state: invalid value "gone": want one of "present", "absent"`
		if err == nil || err.Error() != want {
			t.Fatalf("got %v; want %q", err, want)
		}
		var el ErrorList
		if !errors.As(err, &el) {
			t.Errorf("got %T; want ErrorList", err)
		}
	})

	t.Run("handler name kept", func(t *testing.T) {
		f := &fakeRender{vars: vars}
		got, err := role.Handlers[0].Render(reg, f.render)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "restart {{ app }}" {
			t.Errorf("name: got %q; want it unrendered", got.Name)
		}
		if got.Spec.(*serviceSpec).Service != "shop" {
			t.Errorf("service: got %q; want shop", got.Spec.(*serviceSpec).Service)
		}
	})
}

func TestRenderBadTemplatedType(t *testing.T) {
	role := loadOne(t, "roles:\n  - name: w\n    resources:\n      - {type: shell, cmd: x, retries: \"{{ n }}\"}\n")
	f := &fakeRender{vars: map[string]string{"n": "many"}}
	_, err := role.Resources[0].Render(testRegistry(), f.render)
	want := `site.yaml:4: roles[0].resources[0].retries: want an integer, got a string "many" (after templating)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v; want %q", err, want)
	}
	f.vars["n"] = "4"
	got, err := role.Resources[0].Render(testRegistry(), f.render)
	if err != nil {
		t.Fatal(err)
	}
	if got.Retries != 4 {
		t.Errorf("retries: got %d; want 4", got.Retries)
	}
}

func TestDefaultLabel(t *testing.T) {
	role := loadOne(t, `
roles:
  - name: w
    resources:
      - {type: directory, path: /etc/motd}
      - {type: directory, path: /x, label: custom}
      - {type: package, name: [nginx, curl]}
      - {type: shell, cmd: "echo hi"}
`)
	reg := testRegistry()
	want := []string{"directory[/etc/motd]", "custom", "package[nginx,curl]", "shell[echo hi]"}
	for i, w := range want {
		if got := role.Resources[i].DefaultLabel(reg); got != w {
			t.Errorf("resource %d: got %q; want %q", i, got, w)
		}
	}
	noID := Registry{"directory": {Name: "directory", New: func() any { return &directorySpec{} }}}
	if got := role.Resources[0].DefaultLabel(noID); got != "directory" {
		t.Errorf("without identity: got %q; want directory", got)
	}
	if got := role.Resources[0].DefaultLabel(Registry{}); got != "directory" {
		t.Errorf("unknown type: got %q; want directory", got)
	}
}

func TestLoadDefersTemplatedValues(t *testing.T) {
	role := loadOne(t, `
roles:
  - name: w
    resources:
      - type: service
        service: app
        state: "{{ wanted }}"
        enabled: "{{ on }}"
        retries: "{{ n }}"
        delay: "{{ d }}"
`)
	r := role.Resources[0]
	spec := r.Spec.(*serviceSpec)
	if spec.State != "{{ wanted }}" || spec.Enabled != nil || r.Retries != 0 || r.Delay != 0 {
		t.Errorf("unrendered: got state=%q enabled=%v retries=%d delay=%v; want the template, nil, 0, 0", spec.State, spec.Enabled, r.Retries, r.Delay)
	}
	f := &fakeRender{vars: map[string]string{"wanted": "started", "on": "false", "n": "2", "d": "3s"}}
	got, err := r.Render(testRegistry(), f.render)
	if err != nil {
		t.Fatal(err)
	}
	gs := got.Spec.(*serviceSpec)
	if gs.State != "started" || gs.Enabled == nil || *gs.Enabled || got.Retries != 2 || got.Delay.String() != "3s" {
		t.Errorf("rendered: got state=%q enabled=%v retries=%d delay=%v; want started false 2 3s", gs.State, gs.Enabled, got.Retries, got.Delay)
	}

	// Role keys are not templated: a template there is a plain type error.
	_, err = loadBytes("site.yaml", []byte("roles:\n  - name: w\n    sudo: \"{{ x }}\"\n"), testRegistry(), memFS(nil))
	want := `site.yaml:3: roles[0].sudo: want a boolean (true or false), got a string "{{ x }}" (write true or false without quotes)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v; want %q", err, want)
	}
}
