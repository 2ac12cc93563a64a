package homedir

import "testing"

func TestExpand(t *testing.T) {
	tests := []struct {
		name, p, home, want string
	}{
		{"tilde alone", "~", "/h", "/h"},
		{"under home", "~/.ssh/id", "/h", "/h/.ssh/id"},
		{"cleaned", "~/a/../b", "/h", "/h/b"},
		{"other user", "~bob/x", "/h", "~bob/x"},
		{"absolute", "/etc/x", "/h", "/etc/x"},
		{"relative", "x/~/y", "/h", "x/~/y"},
		{"no home", "~/x", "", "~/x"},
		{"empty", "", "/h", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expand(tt.p, tt.home); got != tt.want {
				t.Errorf("Expand(%q, %q): got %q; want %q", tt.p, tt.home, got, tt.want)
			}
		})
	}
}
