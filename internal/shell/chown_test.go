package shell

import "testing"

func TestChown(t *testing.T) {
	for _, tc := range []struct {
		owner, group string
		recurse      bool
		want         string
	}{
		{"", "", false, ""},
		{"", "", true, ""},
		{"app", "", false, "chown -- app"},
		{"app", "web", false, "chown -- app:web"},
		{"", "web", false, "chgrp -- web"},
		{"app", "", true, "chown -R -- app"},
		{"app", "web", true, "chown -R -- app:web"},
		{"", "web", true, "chgrp -R -- web"},
		{"0", "50", false, "chown -- 0:50"},
		{"a b", "", false, "chown -- 'a b'"},
	} {
		if got := Chown(tc.owner, tc.group, tc.recurse); got != tc.want {
			t.Errorf("Chown(%q, %q, %v) = %q, want %q", tc.owner, tc.group, tc.recurse, got, tc.want)
		}
	}
}
