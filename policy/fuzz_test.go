package policy

import (
	"errors"
	"os"
	"testing"
)

func addFixtureSeeds(f *testing.F, names ...string) {
	f.Helper()
	for _, name := range names {
		data, err := os.ReadFile("../testdata/policy/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// checkErr asserts that a parse or load error is an ErrorList whose every
// entry names its file.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var el ErrorList
	if !errors.As(err, &el) || len(el) == 0 {
		t.Fatalf("got error %T %v; want a non-empty ErrorList", err, err)
	}
	for _, e := range el {
		if e.Pos.File == "" || e.Msg == "" {
			t.Fatalf("got error %#v; want a file and a message", e)
		}
	}
}

func FuzzParseTOML(f *testing.F) {
	addFixtureSeeds(f, "site.toml", "inventory.toml")
	f.Add([]byte("a.b = 1\n[a]\n[[a.c]]\nx = {y = [1, 2.5, 'z', 1979-05-27]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseTOML("fuzz.toml", data)
		checkErr(t, err)
		if err == nil {
			if n == nil || n.Kind != Map {
				t.Fatalf("got %v; want a map", n)
			}
			_ = n.Interface()
			_ = dump(n.Clone())
		}
	})
}

func FuzzParseYAML(f *testing.F) {
	addFixtureSeeds(f, "site.yaml")
	f.Add([]byte("a: &a [1, *a]\n"))
	f.Add([]byte("a: &a {x: 1}\nb: {<<: *a, y: 2}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseYAML("fuzz.yaml", data)
		checkErr(t, err)
		if err == nil {
			if n == nil {
				t.Fatal("got nil node and nil error")
			}
			_ = n.Interface()
		}
	})
}

func FuzzLoadPolicy(f *testing.F) {
	for _, name := range []string{"site.toml", "site.yaml"} {
		data, err := os.ReadFile("../testdata/policy/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, name == "site.yaml")
	}
	f.Add([]byte("[[roles]]\ninclude = \"r.toml\"\n"), false)
	f.Add([]byte("roles: [{include: r.yaml, serial: [1, '5%']}]\n"), true)
	reg := testRegistry()
	files := map[string]string{
		"r.toml": "name = \"r\"\n[[resources]]\ntype = \"shell\"\ncmd = \"{{ x }}\"\n",
		"r.yaml": "include: r.yaml\n",
	}
	f.Fuzz(func(t *testing.T, data []byte, useYAML bool) {
		file := "fuzz.toml"
		if useYAML {
			file = "fuzz.yaml"
		}
		p, err := loadBytes(file, data, reg, memFS(files))
		checkErr(t, err)
		if err != nil {
			return
		}
		if p == nil {
			t.Fatal("got nil policy and nil error")
		}
		for _, r := range p.Roles {
			for _, list := range [][]*Resource{r.Pre, r.Resources, r.Handlers, r.Post} {
				for _, res := range list {
					_ = res.DefaultLabel(reg)
					_, _ = res.Render(reg, func(s string) (string, error) { return s + "1", nil })
				}
			}
		}
	})
}
