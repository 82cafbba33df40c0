package main

import (
	"errors"
	"os/user"
	"testing"
)

func TestOSUserName(t *testing.T) {
	found := func() (*user.User, error) { return &user.User{Username: "alice"}, nil }
	missing := func() (*user.User, error) { return nil, errors.New("user: unknown userid 1000") }
	env := func(v string) func(string) string { return func(string) string { return v } }
	uid := func() int { return 1000 }
	for _, tc := range []struct {
		name    string
		current func() (*user.User, error)
		user    string
		want    string
	}{
		{"from the user database", found, "bob", "alice"},
		{"no entry: $USER", missing, "bob", "bob"},
		{"no entry, no $USER: the uid", missing, "", "uid=1000"},
	} {
		if got := osUserName(tc.current, env(tc.user), uid); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
