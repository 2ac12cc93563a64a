package connection

import (
	"reflect"
	"testing"
	"time"

	"github.com/opsmop/opsmop/defaults"
)

// TestDefaultConnectTimeout holds the connection's default for a zero
// Target.ConnectTimeout equal to opsmop's (defaults.DefaultConnectTimeout).
func TestDefaultConnectTimeout(t *testing.T) {
	if defaultConnectTimeout != defaults.DefaultConnectTimeout {
		t.Fatalf("got defaultConnectTimeout %s; want defaults.DefaultConnectTimeout %s", defaultConnectTimeout, defaults.DefaultConnectTimeout)
	}
}

// TestTargetWithDefaults checks the defaults Pool.Host applies to a target
// and its jump chain, and that the caller's hops are left as they were.
func TestTargetWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Target
		want Target
	}{
		{"zero values", Target{Name: "a"},
			Target{Name: "a", Port: 22, ConnectTimeout: defaultConnectTimeout}},
		{"sudo without a user", Target{Name: "a", Sudo: true},
			Target{Name: "a", Port: 22, ConnectTimeout: defaultConnectTimeout, Sudo: true, SudoUser: "root"}},
		{"set values kept", Target{Name: "a", Port: 2222, ConnectTimeout: 3 * time.Second, Sudo: true, SudoUser: "app"},
			Target{Name: "a", Port: 2222, ConnectTimeout: 3 * time.Second, Sudo: true, SudoUser: "app"}},
		{"no sudo, no sudo user", Target{Name: "a", SudoUser: ""},
			Target{Name: "a", Port: 22, ConnectTimeout: defaultConnectTimeout}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v; want %+v", got, tc.want)
			}
		})
	}
	t.Run("jump chain", func(t *testing.T) {
		far := &Target{Name: "far"}
		near := &Target{Name: "near", Via: far}
		got := Target{Name: "host", Via: near}.withDefaults()
		for _, hop := range []*Target{got.Via, got.Via.Via} {
			if hop.Port != 22 || hop.ConnectTimeout != defaultConnectTimeout {
				t.Fatalf("got hop %+v; want port 22 and connect timeout %s", *hop, defaultConnectTimeout)
			}
		}
		if got.Via.Name != "near" || got.Via.Via.Name != "far" || got.Via.Via.Via != nil {
			t.Fatalf("got chain %s -> %s -> %v; want near -> far -> <nil>", got.Via.Name, got.Via.Via.Name, got.Via.Via.Via)
		}
		if !reflect.DeepEqual(*near, Target{Name: "near", Via: far}) || !reflect.DeepEqual(*far, Target{Name: "far"}) {
			t.Fatalf("got caller's hops %+v, %+v; want them unchanged", *near, *far)
		}
	})
	t.Run("cycle", func(t *testing.T) {
		a := &Target{Name: "a"}
		b := &Target{Name: "b", Via: a}
		a.Via = b
		got := a.withDefaults() // must return
		depth := 0
		for hop := &got; hop != nil && hop.Port == 22; hop = hop.Via {
			depth++
		}
		if depth != maxViaDepth+2 {
			t.Fatalf("got defaults on %d hops; want %d (every hop Pool.Host may dial, and the one it refuses)", depth, maxViaDepth+2)
		}
	})
}
