// Command okta measures a pull of 10,000 users from the fake Okta org in
// internal/oktatest, which allows 600 requests a minute per endpoint:
//
//	go run ./bench/okta
//
// It checks that the pull takes exactly ceil(10000/200) = 50 user-list
// requests plus only the group requests it needs, and never draws a 429,
// and prints the request counts and the wall time. It exits 1 if a check
// fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/connector/okta"
	"github.com/seatsync/seatsync/internal/oktatest"
	"github.com/seatsync/seatsync/model"
)

func main() {
	users := flag.Int("users", 10_000, "users in the fake org")
	partners := flag.Int("partners", 1_000, "of them, members of the group an area rule names")
	limit := flag.Int("rate-limit", 600, "requests a minute the fake org allows per endpoint")
	flag.Parse()
	if err := run(*users, *partners, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "bench/okta:", err)
		os.Exit(1)
	}
}

func run(users, partners, limit int) error {
	srv := oktatest.New(oktatest.Options{RateLimit: limit})
	defer srv.Close()
	us := make([]oktatest.User, users)
	for i := range us {
		login := fmt.Sprintf("user%05d@example.com", i)
		us[i] = oktatest.User{Profile: map[string]any{
			"login": login, "email": login, "firstName": "Given", "lastName": fmt.Sprintf("Family%05d", i),
			"department": "Sales", "costCenter": fmt.Sprintf("CC-%d", i%20),
		}}
		if i < partners {
			us[i].Groups = []string{"Partners"}
		}
	}
	srv.AddUsers(us...)

	src := config.Source{Name: "okta", Type: "okta", Settings: &okta.Settings{OrgURL: srv.URL, Auth: "token",
		Token: config.NewSecret(srv.Token()), RateLimitShare: config.Percent{Value: 50, Set: true},
		Timeout: config.Duration{Duration: 30 * time.Second}}}
	pages := (users + 199) / 200
	memberPages := (partners + 199) / 200
	fail := false
	for _, sc := range []struct {
		name       string
		rules      []config.AreaRule
		wantGroups int
	}{
		{"no groups needed", nil, 0},
		{"area rule on a group", []config.AreaRule{{Group: "Partners", Area: "partners"}}, 1 + memberPages},
	} {
		srv.ResetCounts()
		src.AreaRules = sc.rules
		s, err := okta.New(src, zap.NewNop(), okta.Options{})
		if err != nil {
			return err
		}
		n := 0
		start := time.Now()
		err = s.Pull(context.Background(), func(model.Identity) error { n++; return nil }, func(connector.Skip) {})
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		c := srv.Counts()
		groupReqs := c[oktatest.EndpointGroups] + c[oktatest.EndpointGroupUsers] + c[oktatest.EndpointUserGroups]
		fmt.Printf("%-22s users=%d identities=%d user-list requests=%d (want %d) group requests=%d (want %d) total=%d 429s=%d wall=%s\n",
			sc.name, users, n, c[oktatest.EndpointUsers], pages, groupReqs, sc.wantGroups,
			c[oktatest.EndpointUsers]+groupReqs, c["429"], took.Round(time.Millisecond))
		if n != users || c[oktatest.EndpointUsers] != pages || groupReqs != sc.wantGroups || c["429"] != 0 {
			fail = true
		}
	}
	if fail {
		return fmt.Errorf("a check failed (see above)")
	}
	return nil
}
