package policy

import (
	"reflect"
	"testing"
)

func TestSerialPlan(t *testing.T) {
	tests := []struct {
		name, serial string
		want         []BatchSize
	}{
		{"one number", "2", []BatchSize{{Hosts: 2}}},
		{"one percentage", `"25%"`, []BatchSize{{Percent: 25}}},
		{"list, spaces and fractions", `[1, " 12.5% ", "100%"]`, []BatchSize{{Hosts: 1}, {Percent: 12.5}, {Percent: 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "[[roles]]\nname = \"r\"\nserial = " + tt.serial + "\n"
			p, err := loadBytes("site.toml", []byte(src), testRegistry(), memFS(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Roles[0].Serial; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestBatchSize(t *testing.T) {
	tests := []struct {
		size BatchSize
		n    int
		of   int
		str  string
	}{
		{BatchSize{Hosts: 3}, 10, 3, "3"},
		{BatchSize{Hosts: 30}, 10, 30, "30"},
		{BatchSize{Percent: 25}, 10, 2, "25%"},
		{BatchSize{Percent: 12.5}, 40, 5, "12.5%"},
		{BatchSize{Percent: 10}, 3, 0, "10%"},
		{BatchSize{Percent: 100}, 7, 7, "100%"},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if got := tt.size.Of(tt.n); got != tt.of {
				t.Errorf("Of(%d): got %d; want %d", tt.n, got, tt.of)
			}
			if got := tt.size.String(); got != tt.str {
				t.Errorf("String: got %q; want %q", got, tt.str)
			}
		})
	}
}

func TestLoopForms(t *testing.T) {
	tests := []struct {
		name, loop string
		want       *Loop
	}{
		{"list", "loop: [1, two]", &Loop{Items: []any{1, "two"}}},
		{"empty list is a list", "loop: []", &Loop{Items: []any{}}},
		{"expression", "loop: \"{{ items }}\"", &Loop{Expr: "{{ items }}"}},
		{"null is no loop", "loop:", nil},
		{"absent", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "roles:\n  - name: r\n    resources:\n      - type: shell\n        cmd: x\n        " + tt.loop + "\n"
			p, err := loadBytes("site.yaml", []byte(src), testRegistry(), memFS(nil))
			if err != nil {
				t.Fatal(err)
			}
			got := p.Roles[0].Resources[0].Loop
			if !reflect.DeepEqual(got, tt.want) { // an empty list is not a nil one
				t.Errorf("got %#v; want %#v", got, tt.want)
			}
		})
	}
}
