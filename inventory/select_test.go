package inventory

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	inv := loadExample(t, "example.toml")
	// Inventory order: as the hosts first appear in example.toml.
	allHosts := []string{"web1.example.com", "web2.example.com", "127.0.0.1", "web3.example.com", "db1.example.com", "lonely.example.com"}
	cases := []struct {
		groups, hosts string
		want          []string
	}{
		{"", "", allHosts},
		{"all", "", allHosts},
		{"webservers", "", []string{"web1.example.com", "web2.example.com", "127.0.0.1"}},
		{"rack1", "", []string{"web1.example.com", "web2.example.com", "127.0.0.1"}},
		{"web*", "", []string{"web1.example.com", "web2.example.com", "127.0.0.1", "web3.example.com"}},
		{"dbservers, webservers_eu", "", []string{"web3.example.com", "db1.example.com"}},
		{"", "db*", []string{"db1.example.com"}},
		{"", "web[12].example.com", []string{"web1.example.com", "web2.example.com"}},
		{"", "127.0.0.1,lonely.example.com", []string{"127.0.0.1", "lonely.example.com"}},
		{"dbservers", "lonely*", []string{"db1.example.com", "lonely.example.com"}},
		{"ungrouped", "", []string{"lonely.example.com"}},
		{"nomatch", "", nil},
		{"web[", "", nil}, // an unclosed [ is literal text
		{"", "web[!1].example.com", []string{"web2.example.com", "web3.example.com"}},
		{"", "web[^1].example.com", []string{"web1.example.com"}}, // ^ is no negation in fnmatch
		{"", "*[!a-z.]*", []string{"web1.example.com", "web2.example.com", "127.0.0.1", "web3.example.com", "db1.example.com"}},
		{"webservers_??", "", []string{"web3.example.com"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("groups=%q hosts=%q", c.groups, c.hosts), func(t *testing.T) {
			got := inv.Select(c.groups, c.hosts)
			var gotNames []string
			for _, h := range got {
				gotNames = append(gotNames, h.Name)
			}
			if !reflect.DeepEqual(gotNames, c.want) {
				t.Errorf("Select(%q, %q): got %v; want %v", c.groups, c.hosts, gotNames, c.want)
			}
		})
	}
}

func TestCheckPatterns(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"web*,db?", true},
		{"[a-z]*", true},
		{"[!a-z]*,[]]", true},
		{" , ,web", true}, // empty items are ignored
		// fnmatch has no malformed patterns: an unclosed [ and a \ are
		// literal text (path.Match refused these).
		{"web[", true},
		{"ok,[", true},
		{`a\`, true},
		// No name starts with ! or &: such a pattern can never match (a
		// role has no --limit operators).
		{"!web", false},
		{"web, &db", false},
		{"&", false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			err := CheckPatterns(c.in)
			if (err == nil) != c.ok {
				t.Errorf("CheckPatterns(%q): got %v; want ok=%v", c.in, err, c.ok)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	inv := loadExample(t, "example.toml")
	cases := []struct {
		limit string
		want  []string // nil: a *NoMatchError
	}{
		{"webservers*,!web1*", []string{"web2.example.com", "127.0.0.1", "web3.example.com"}},
		{"!web1*,webservers*", []string{"web2.example.com", "127.0.0.1", "web3.example.com"}},
		{" webservers* , !web1* ", []string{"web2.example.com", "127.0.0.1", "web3.example.com"}},
		{"webservers", []string{"web1.example.com", "web2.example.com", "127.0.0.1"}},
		{"rack1", []string{"web1.example.com", "web2.example.com", "127.0.0.1"}},
		{"db1.example.com", []string{"db1.example.com"}},
		{"web*", []string{"web1.example.com", "web2.example.com", "127.0.0.1", "web3.example.com"}},
		{"all,!webservers", []string{"web3.example.com", "db1.example.com", "lonely.example.com"}},
		{"!webservers", []string{"web3.example.com", "db1.example.com", "lonely.example.com"}},
		{"webservers*,&rack1", []string{"web1.example.com", "web2.example.com", "127.0.0.1"}},
		{"&rack1", []string{"web1.example.com", "web2.example.com", "127.0.0.1"}},
		{"webservers,&rack1,!127.*", []string{"web1.example.com", "web2.example.com"}},
		{"ungrouped,dbservers", []string{"db1.example.com", "lonely.example.com"}},
		{"web[12].example.com", []string{"web1.example.com", "web2.example.com"}},
		{"webservers,,db*", []string{"web1.example.com", "web2.example.com", "127.0.0.1", "db1.example.com"}},
		{"nomatch", nil},
		{"webservers_eu,&rack1", nil},
		{"all,!all", nil},
	}
	for _, c := range cases {
		t.Run(c.limit, func(t *testing.T) {
			l, err := ParseLimit(c.limit)
			if err != nil {
				t.Fatalf("ParseLimit(%q): %v", c.limit, err)
			}
			got, err := l.Filter(inv, inv.Hosts())
			if c.want == nil {
				var nm *NoMatchError
				if !errors.As(err, &nm) {
					t.Fatalf("Filter(%q): got %v, %v; want a *NoMatchError", c.limit, names(got), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Filter(%q): %v", c.limit, err)
			}
			if gotNames := names(got); !reflect.DeepEqual(gotNames, c.want) {
				t.Errorf("Filter(%q): got %v; want %v", c.limit, gotNames, c.want)
			}
		})
	}
}

func TestLimitFilterKeepsOrderAndAllowsEmptySubset(t *testing.T) {
	inv := loadExample(t, "example.toml")
	l, err := ParseLimit("webservers")
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := inv.Host("web2.example.com")
	w1, _ := inv.Host("web1.example.com")
	db, _ := inv.Host("db1.example.com")
	got, err := l.Filter(inv, []*Host{w2, db, w1})
	if err != nil {
		t.Fatalf("Filter: %v", err)
	}
	if want := []string{"web2.example.com", "web1.example.com"}; !reflect.DeepEqual(names(got), want) {
		t.Errorf("Filter: got %v; want %v (input order)", names(got), want)
	}
	got, err = l.Filter(inv, []*Host{db})
	if err != nil || len(got) != 0 {
		t.Errorf("Filter(role with only db1): got %v, %v; want no hosts and no error (the limit matches other hosts of the inventory)", names(got), err)
	}
	var nilLimit *Limit
	got, err = nilLimit.Filter(inv, []*Host{db})
	if err != nil || !reflect.DeepEqual(names(got), []string{"db1.example.com"}) {
		t.Errorf("nil Limit Filter: got %v, %v; want [db1.example.com], nil", names(got), err)
	}
}

func TestLimitNoMatchErrorListsInventory(t *testing.T) {
	var groups []Group
	var hosts []string
	for i := 0; i < 25; i++ {
		hosts = append(hosts, fmt.Sprintf("h%02d", i))
	}
	groups = append(groups, Group{Name: "web", Hosts: hosts}, Group{Name: "db"})
	inv, err := New(groups, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := ParseLimit("typo")
	_, err = l.Filter(inv, inv.Hosts())
	var nm *NoMatchError
	if !errors.As(err, &nm) {
		t.Fatalf("Filter: got %v; want *NoMatchError", err)
	}
	if len(nm.Hosts) != 20 || nm.MoreHosts != 5 {
		t.Errorf("NoMatchError: got %d hosts listed and %d more; want 20 and 5", len(nm.Hosts), nm.MoreHosts)
	}
	msg := err.Error()
	for _, w := range []string{`--limit "typo" matches no host`, "groups: all, db, web", "h00", "h19", "(and 5 more)"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q: want it to contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "h20") {
		t.Errorf("error %q: lists more than 20 hosts", msg)
	}

	ex := loadExample(t, "example.toml")
	_, err = l.Filter(ex, ex.Hosts())
	if err == nil || !strings.Contains(err.Error(), "in inventory "+filepath.Join("testdata", "example.toml")) {
		t.Errorf("Filter on a loaded inventory: got %v; want the error to name the inventory file", err)
	}
}

func TestParseLimitErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "no patterns"},
		{" , ,", "no patterns"},
		{"!", `has no pattern after "!"`},
		{"web,&", `has no pattern after "&"`},
		{"!!web", `"!!web": a pattern cannot start with "!"`},
		{"web,&!db", `"&!db": a pattern cannot start with "!"`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			l, err := ParseLimit(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseLimit(%q): got %v, %v; want an error containing %q", c.in, l, err, c.want)
			}
		})
	}
}

func TestLimitString(t *testing.T) {
	l, err := ParseLimit(" web* , !web1 ,&eu,,")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.String(), "web*,!web1,&eu"; got != want {
		t.Errorf("String(): got %q; want %q", got, want)
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"webservers*,!web1*", "&rack1,db*", "web[12]*", "!", "web[", `a\`, "all,!all", " , ", "[!a]*,?b"} {
		f.Add(s)
	}
	inv, err := Load(context.Background(), filepath.Join("testdata", "example.toml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			return
		}
		again, err := ParseLimit(l.String())
		if err != nil {
			t.Fatalf("ParseLimit(%q.String() = %q): %v", s, l.String(), err)
		}
		if again.String() != l.String() {
			t.Fatalf("String round trip: %q -> %q -> %q", s, l.String(), again.String())
		}
		got, err := l.Filter(inv, inv.Hosts())
		var nm *NoMatchError
		if err != nil && !errors.As(err, &nm) {
			t.Fatalf("Filter(%q): got %v; want nil or *NoMatchError", s, err)
		}
		if err == nil && len(got) == 0 {
			t.Fatalf("Filter(%q): no hosts and no error; want a *NoMatchError", s)
		}
		got2, err2 := again.Filter(inv, inv.Hosts())
		if !reflect.DeepEqual(names(got), names(got2)) || (err == nil) != (err2 == nil) {
			t.Fatalf("Filter(%q) = %v, %v but the re-parsed limit gives %v, %v", s, names(got), err, names(got2), err2)
		}
	})
}
