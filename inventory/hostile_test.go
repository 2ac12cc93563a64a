package inventory

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// measure runs f and returns how long it took and how many bytes it
// allocated (runtime.MemStats.TotalAlloc, which counts every allocation,
// freed or not: an upper bound of the memory f needed).
func measure(f func()) (time.Duration, uint64) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	f()
	d := time.Since(start)
	runtime.ReadMemStats(&m1)
	return d, m1.TotalAlloc - m0.TotalAlloc
}

// aliasBomb is a "billion laughs" YAML inventory: nine levels of nine
// aliases each, 9^9 values once expanded.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("groups:\n  web:\n    hosts: {a: }\n    vars:\n      a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for c := 'b'; c <= 'i'; c++ {
		b.WriteString("      " + string(c) + ": &" + string(c) + " [")
		for i := 0; i < 9; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + string(c-1))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// TestLoadHostileInput feeds Load oversized and malformed inventories:
// each fails with an error naming the file and the problem, within a
// bounded time and allocation.
func TestLoadHostileInput(t *testing.T) {
	deep := strings.Repeat("[", 1_000_000) + strings.Repeat("]", 1_000_000)
	var manyKeys strings.Builder
	manyKeys.WriteString("[groups.web.hosts]\n")
	for i := 0; i <= maxTOMLKeys; i++ {
		fmt.Fprintf(&manyKeys, "h%d = \"\"\n", i)
	}
	cases := []struct {
		name string
		file string
		// content is written as the file; size > 0 instead makes a sparse
		// file of that many bytes (nothing is read from it).
		content  string
		size     int64
		want     string
		maxAlloc uint64
	}{
		{name: "100 MB TOML", file: "big.toml", size: 100 << 20, want: "100.0 MiB is larger than the limit of 32 MiB", maxAlloc: 1 << 20},
		{name: "100 MB YAML", file: "big.yaml", size: 100 << 20, want: "larger than the limit of 32 MiB", maxAlloc: 1 << 20},
		{name: "100 MB JSON", file: "big.json", size: 100 << 20, want: "larger than the limit of 32 MiB", maxAlloc: 1 << 20},
		{name: "YAML alias bomb", file: "bomb.yaml", content: aliasBomb(), want: "line 5: aliases expand to more than 1000000 values", maxAlloc: 512 << 20},
		{name: "YAML alias inside itself", file: "self.yaml", content: "groups:\n  web:\n    hosts: {a: }\n    vars:\n      x: &x [1, *x]\n", want: "refers to a node that contains it", maxAlloc: 1 << 20},
		{name: "YAML nested a million deep", file: "deep.yaml", content: "groups:\n  web:\n    vars:\n      x: " + deep + "\n", want: "exceeded max depth of 10000", maxAlloc: 64 << 20},
		{name: "TOML nested a million deep", file: "deep.toml", content: "[groups.web.vars]\nx = " + deep + "\n", want: "nested more than the maximum of 10000 levels deep", maxAlloc: 64 << 20},
		{name: "TOML with too many keys", file: "keys.toml", content: manyKeys.String(), want: "more than 100000 keys; TOML inventories that large load too slowly", maxAlloc: 256 << 20},
		{name: "YAML non-scalar key", file: "key.yaml", content: "groups:\n  ? [a, b]\n  : {}\n", want: "line 2: map keys must be plain strings, not a list", maxAlloc: 1 << 20},
		{name: "YAML merge of a scalar", file: "merge.yaml", content: "groups:\n  web:\n    vars:\n      <<: 5\n", want: "line 4: map merge (<<) needs a map or a list of maps, not an integer 5", maxAlloc: 1 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), c.file)
			if c.size > 0 {
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Truncate(c.size); err != nil {
					t.Fatal(err)
				}
				f.Close()
			} else if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			d, alloc := measure(func() { _, err = Load(context.Background(), p) })
			if err == nil {
				t.Fatalf("Load: no error; want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Load error: got %q; want it to name %s and contain %q", err, p, c.want)
			}
			if d > 10*time.Second {
				t.Errorf("Load took %v; want well under 10s", d)
			}
			if alloc > c.maxAlloc {
				t.Errorf("Load allocated %d MiB; want at most %d MiB", alloc>>20, c.maxAlloc>>20)
			}
			t.Logf("%v, %.1f MiB allocated", d.Round(time.Millisecond), float64(alloc)/(1<<20))
		})
	}
}

// TestInventoryScriptOutputBounded runs an inventory script that prints
// without end: Load stops reading at the size limit and fails.
func TestInventoryScriptOutputBounded(t *testing.T) {
	p := writeFile(t, "endless", "#!/bin/sh\nexec yes '{\"web\": [\"a\"]}'\n", 0o755)
	var err error
	d, alloc := measure(func() { _, err = Load(context.Background(), p) })
	if err == nil || !strings.Contains(err.Error(), "printed more than the limit of 32 MiB") {
		t.Fatalf("Load: got %v; want an error about the output limit", err)
	}
	// The buffer doubles up to the limit (about 2x MaxFileSize allocated
	// in all); the bound leaves room for the runtime's own accounting,
	// which was seen adding 32 MiB now and then. Without the cap the
	// script would fill memory.
	if d > 10*time.Second || alloc > 4*MaxFileSize {
		t.Errorf("Load took %v and allocated %d MiB; want a bounded run (the output is capped at %d MiB)", d, alloc>>20, MaxFileSize>>20)
	}
}

// TestLoadYAMLManyKeysFast loads a YAML inventory whose one mapping has
// 50 000 keys in well under 5 s (about 0.7 s here). yaml.v3's own decoder
// compares every key of a mapping with every other: the same file took
// 29 s with it.
func TestLoadYAMLManyKeysFast(t *testing.T) {
	var b strings.Builder
	b.WriteString("groups:\n  web:\n    hosts: {a: }\n    vars:\n")
	for i := 0; i < 50000; i++ {
		fmt.Fprintf(&b, "      v%d: %d\n", i, i)
	}
	p := writeFile(t, "many.yaml", b.String(), 0o644)
	var inv *Inventory
	var err error
	d, _ := measure(func() { inv, err = Load(context.Background(), p) })
	if err != nil {
		t.Fatal(err)
	}
	h, _ := inv.Host("a")
	if len(h.Vars) != 50000 || h.Vars["v49999"] != 49999 {
		t.Fatalf("got %d vars (v49999 = %v); want 50000 (v49999 = 49999)", len(h.Vars), h.Vars["v49999"])
	}
	t.Logf("50000 keys loaded in %v", d)
	if d > 5*time.Second {
		t.Errorf("took %v; want well under 5s (linear in the number of keys)", d)
	}
}

// TestYAMLConvMatchesDecoder checks the linear YAML conversion against
// yaml.v3's own decoding on documents using every YAML feature an
// inventory may: scalars of every type, anchors, aliases, merge keys.
func TestYAMLConvMatchesDecoder(t *testing.T) {
	docs := map[string]string{
		"scalars":        "a: 1\nb: 1.5\nc: true\nd: ~\ne: \"x\"\nf: 'y'\ng: 0x1f\nh: 1e3\ni: .inf\nj: 2001-12-14\nk: 2001-12-14T21:59:43Z\nl: !!str 5\nm: !!binary aGVsbG8=\nn: |\n  block\n  text\no: 18446744073709551615\np: -9223372036854775808\n",
		"keys":           "1: a\ntrue: b\n1.5: c\n~: d\n",
		"anchors":        "base: &b {x: 1, y: [1, 2]}\nuse: *b\nlist: [*b, *b]\n",
		"merge":          "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n",
		"merge list":     "a: &a {x: 1, z: a}\nb: &b {x: 2, y: 2}\nm:\n  <<: [*a, *b]\n  w: 0\n",
		"merge inline":   "m:\n  <<: {x: 1}\n  y: 2\n",
		"nested merge":   "a: &a {x: 1}\nb: &b\n  <<: *a\n  y: 2\nc:\n  <<: *b\n  z: 3\n",
		"empty":          "a:\nb: []\nc: {}\n",
		"alias as key":   "k: &k name\nm: {*k : 1}\n",
		"deep sequences": "a: [[[[1]]], [[2, [3]]]]\n",
	}
	for name, src := range docs {
		t.Run(name, func(t *testing.T) {
			var root yaml.Node
			if err := yaml.Unmarshal([]byte(src), &root); err != nil {
				t.Fatal(err)
			}
			var want any
			if err := root.Content[0].Decode(&want); err != nil {
				t.Fatal(err)
			}
			got, err := yamlValue(root.Content[0], maxAliasValues)
			if err != nil {
				t.Fatalf("value: %v", err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Errorf("got %#v; want %#v (as yaml.v3 decodes it)", normalize(got), normalize(want))
			}
		})
	}
}

// TestYAMLDuplicateKeys: a key written twice is an error naming both
// lines, also when two spellings normalize to the same key (yaml.v3 let
// 1 and "1" through, and one of the two values won at random).
func TestYAMLDuplicateKeys(t *testing.T) {
	cases := []struct{ src, want string }{
		{"a: 1\nb: 2\na: 3\n", `line 3: duplicate key "a" (first set at line 1)`},
		{"1: x\n\"1\": y\n", `line 2: duplicate key "1" (first set at line 1)`},
		{"<<: {a: 1}\n<<: {b: 2}\n", "line 2: a second merge key (<<) in the same map (the first is at line 1); merge several maps with one: <<: [*a, *b]"},
	}
	for _, c := range cases {
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(c.src), &root); err != nil {
			t.Fatal(err)
		}
		_, err := yamlValue(&root, maxAliasValues)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: got %v; want %q", c.src, err, c.want)
		}
	}
}
