package ldap

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/connector"
)

// query is one search the connector makes.
type query struct {
	what   string // for errors and logs: "people", "groups", "disabled people"
	base   string
	scope  int
	filter string
	attrs  []string
	paged  bool
}

// ErrIncomplete marks a search the server did not finish: a size or time
// limit, a referral seatsync cannot follow, a dropped connection. The pull
// fails rather than report fewer people than the directory holds.
var ErrIncomplete = errors.New("search incomplete")

// search streams every entry query matches to fn, page by page with the
// simple paged results control when query.paged. Only one page is in memory
// at a time. Continuation references are ignored. Paged searches go over
// the connection's wire when it has one.
func (s *source) search(ctx context.Context, c *conn, q query, fn func(*goldap.Entry) error) error {
	s.logSearch(c, q)
	var paging *goldap.ControlPaging
	var controls []goldap.Control
	if q.paged {
		paging = goldap.NewControlPaging(uint32(s.pageSize))
		controls = []goldap.Control{paging}
	}
	for page := 1; ; page++ {
		var cookie []byte
		var gotPaging bool
		var err error
		if q.paged && c.wire != nil && !c.wire.busy {
			cookie, gotPaging, err = s.wirePage(ctx, c, q, page, controls, fn)
		} else {
			cookie, gotPaging, err = s.connPage(ctx, c, q, page, controls, fn)
		}
		if err != nil {
			return err
		}
		if q.paged && !gotPaging {
			return searchError(q, page, c, goldap.NewError(goldap.ErrorNetwork,
				errors.New("the page ended without a paged results control (a lost connection, or a server without paging support)")))
		}
		connector.PageRead(ctx)
		if len(cookie) == 0 {
			return nil
		}
		paging.SetCookie(cookie)
	}
}

// connPage reads one page through go-ldap. It returns the paging cookie
// and whether a paging control came at all; an error from fn is returned
// as is.
func (s *source) connPage(ctx context.Context, c *conn, q query, page int, controls []goldap.Control, fn func(*goldap.Entry) error) (cookie []byte, gotPaging bool, err error) {
	req := goldap.NewSearchRequest(q.base, q.scope, goldap.NeverDerefAliases, 0, 0, false, q.filter, q.attrs, controls)
	// The buffer holds a whole page, so go-ldap's reader never waits on
	// this loop, however slow fn is, and answers to other requests made
	// from fn (range retrieval) are not held up behind it.
	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp := c.SearchAsync(pctx, req, 2*s.pageSize+16)
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			if err := fn(e); err != nil {
				return nil, false, err
			}
			continue
		}
		if ref := resp.Referral(); ref != "" {
			s.logReference(q, ref)
			continue
		}
		if ctl, ok := goldap.FindControl(resp.Controls(), goldap.ControlTypePaging).(*goldap.ControlPaging); ok {
			cookie, gotPaging = ctl.Cookie, true
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("search %s under %s: %w", q.what, q.base, err)
	}
	// A page whose paging control arrived is complete, even if the
	// deadline passed just after.
	if errors.Is(pctx.Err(), context.DeadlineExceeded) && !gotPaging {
		return nil, false, searchError(q, page, c, fmt.Errorf("no complete page within timeout %s: %w", s.timeout, context.DeadlineExceeded))
	}
	if err := resp.Err(); err != nil {
		return nil, false, searchError(q, page, c, err)
	}
	// go-ldap ends a search on a connection that is already closed without
	// an error, and sends no result for a search done without response
	// controls: a page that ends without the paging control cannot be told
	// from a page cut off.
	if c.IsClosing() {
		return nil, false, searchError(q, page, c, goldap.NewError(goldap.ErrorNetwork, errors.New("connection closed")))
	}
	return cookie, gotPaging, nil
}

// wirePage reads one page through the connection's wire, as connPage.
func (s *source) wirePage(ctx context.Context, c *conn, q query, page int, controls []goldap.Control, fn func(*goldap.Entry) error) (cookie []byte, gotPaging bool, err error) {
	done, fnErr, err := c.wire.page(q, controls, fn, func(ref string) { s.logReference(q, ref) })
	switch {
	case fnErr != nil:
		return nil, false, fnErr
	case ctx.Err() != nil:
		return nil, false, fmt.Errorf("search %s under %s: %w", q.what, q.base, ctx.Err())
	case err != nil:
		return nil, false, searchError(q, page, c, err)
	}
	if err := goldap.GetLDAPError(done); err != nil {
		return nil, false, searchError(q, page, c, err)
	}
	if len(done.Children) > 2 {
		for _, child := range done.Children[2].Children {
			ctl, err := goldap.DecodeControl(child)
			if err != nil {
				return nil, false, searchError(q, page, c, goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("undecodable control: %w", err)))
			}
			if p, ok := ctl.(*goldap.ControlPaging); ok {
				cookie, gotPaging = p.Cookie, true
			}
		}
	}
	return cookie, gotPaging, nil
}

func (s *source) logReference(q query, ref string) {
	s.log.Debug("ldap search reference ignored", zap.String("search", q.what), zap.String("reference", ref))
}

// searchError explains why a search stopped.
func searchError(q query, page int, c *conn, err error) error {
	at := fmt.Sprintf("search %s under %s (page %d, %s)", q.what, q.base, page, c.url)
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
		return fmt.Errorf("%s: %w: the server's size limit cut the result short; raise the limit for the bind account: %w", at, ErrIncomplete, err)
	case goldap.IsErrorWithCode(err, goldap.LDAPResultTimeLimitExceeded):
		return fmt.Errorf("%s: %w: the server's time limit cut the result short: %w", at, ErrIncomplete, err)
	case goldap.IsErrorWithCode(err, goldap.LDAPResultReferral):
		return fmt.Errorf("%s: %w: the server answered with a referral, which seatsync does not follow; point url at a server that holds base_dn: %w", at, ErrIncomplete, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: %w", at, ErrIncomplete, err)
	case isConnError(err):
		return fmt.Errorf("%s: %w: the connection was lost: %w", at, ErrIncomplete, err)
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		return fmt.Errorf("%s: %s does not exist: %w", at, q.base, err)
	}
	return fmt.Errorf("%s: %w", at, err)
}

// isConnError reports an error of the connection rather than a result
// the server sent.
func isConnError(err error) bool {
	var le *goldap.Error
	return !errors.As(err, &le) || le.ResultCode >= goldap.ErrorNetwork
}

// logSearch logs the search as an ldapsearch command line that reproduces
// it. The password is written as $LDAP_PASSWORD, never its value.
func (s *source) logSearch(c *conn, q query) {
	if ce := s.log.Check(zap.DebugLevel, "ldap search"); ce != nil {
		ce.Write(zap.String("search", q.what), zap.String("ldapsearch", s.ldapsearch(c.url, q)))
	}
}

func (s *source) ldapsearch(url string, q query) string {
	var b strings.Builder
	if s.caFile != "" {
		b.WriteString("LDAPTLS_CACERT=" + shellQuote(s.caFile) + " ")
	}
	if s.serverName != "" {
		b.WriteString("LDAPTLS_REQSAN=demand ")
	}
	b.WriteString("ldapsearch -o ldif-wrap=no -x -H " + shellQuote(url))
	if s.tlsMode == "starttls" {
		b.WriteString(" -ZZ")
	}
	if s.bindDN != "" {
		b.WriteString(" -D " + shellQuote(s.bindDN) + ` -w "$LDAP_PASSWORD"`)
	}
	scope := "sub"
	switch q.scope {
	case goldap.ScopeBaseObject:
		scope = "base"
	case goldap.ScopeSingleLevel:
		scope = "one"
	}
	b.WriteString(" -b " + shellQuote(q.base) + " -s " + scope)
	if q.paged {
		b.WriteString(" -E pr=" + strconv.Itoa(s.pageSize) + "/noprompt")
	}
	b.WriteString(" " + shellQuote(q.filter))
	for _, a := range q.attrs {
		b.WriteString(" " + shellQuote(a))
	}
	return b.String()
}

func shellQuote(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+", r))
	}) < 0 {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// values returns every value of attr on e. Active Directory returns large
// multi-valued attributes in ranges ("member;range=0-1499"); the rest is
// fetched with further base searches on the entry until the last range
// ("member;range=3000-*").
func (s *source) values(ctx context.Context, c *conn, e *goldap.Entry, attr string) ([]string, error) {
	var vals []string
	var next int
	ranged := false
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, attr) {
			vals = append(vals, a.Values...)
			continue
		}
		if _, hi, ok := rangeOf(a.Name, attr); ok {
			vals = append(vals, a.Values...)
			if hi >= 0 {
				ranged, next = true, hi+1
			}
		}
	}
	for ranged {
		want := fmt.Sprintf("%s;range=%d-*", attr, next)
		q := query{what: attr + " range", base: e.DN, scope: goldap.ScopeBaseObject, filter: "(objectClass=*)", attrs: []string{want}}
		ranged = false
		found := false
		err := s.search(ctx, c, q, func(re *goldap.Entry) error {
			for _, a := range re.Attributes {
				if _, hi, ok := rangeOf(a.Name, attr); ok {
					found = true
					vals = append(vals, a.Values...)
					if hi >= 0 {
						ranged, next = true, hi+1
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("read %s of %s: %w: the server stopped answering range %s", attr, e.DN, ErrIncomplete, want)
		}
	}
	return vals, nil
}

// rangeOf parses an attribute description "attr;range=lo-hi"; hi is -1 for
// the last range ("*").
func rangeOf(desc, attr string) (lo, hi int, ok bool) {
	head, opts, found := strings.Cut(desc, ";")
	if !found || !strings.EqualFold(head, attr) {
		return 0, 0, false
	}
	for _, o := range strings.Split(opts, ";") {
		r, isRange := strings.CutPrefix(strings.ToLower(o), "range=")
		if !isRange {
			continue
		}
		l, h, dash := strings.Cut(r, "-")
		if !dash {
			return 0, 0, false
		}
		var err error
		if lo, err = strconv.Atoi(l); err != nil {
			return 0, 0, false
		}
		if h == "*" {
			return lo, -1, true
		}
		if hi, err = strconv.Atoi(h); err != nil {
			return 0, 0, false
		}
		return lo, hi, true
	}
	return 0, 0, false
}

// checkFilter reports a filter that does not parse.
func checkFilter(f string) error {
	_, err := goldap.CompileFilter(f)
	return err
}

func parseDN(dn string) (*goldap.DN, error) { return goldap.ParseDN(dn) }

// normDN is the form DNs are compared in: parsed, attribute types and
// values lower-cased, no spaces around separators. A DN that does not parse
// is only lower-cased.
func normDN(dn string) string {
	if plainDN(dn) {
		// What ParseDN and String would give back, without their cost
		// (half a second for the 100,000 DNs of a full read).
		return strings.ToLower(dn)
	}
	d, err := goldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	return strings.ToLower(d.String())
}

// plainDN reports whether dn is written the way goldap's DN.String writes
// it back: RDNs of one type=value each, of letters, digits, "-", ".", "_"
// and "@", with single spaces inside values only, and nothing to escape.
func plainDN(dn string) bool {
	eq := false       // this RDN has its "="
	prev := byte(',') // the byte before, "," at the start
	for i := 0; i < len(dn); i++ {
		c := dn[i]
		switch {
		case c == '=':
			if eq || prev == ',' || prev == ' ' {
				return false
			}
			eq = true
		case c == ',':
			if !eq || prev == '=' || prev == ' ' {
				return false
			}
			eq = false
		case c == ' ':
			if !eq || prev == ',' || prev == '=' || prev == ' ' {
				return false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '@':
		default:
			return false
		}
		prev = c
	}
	return eq && prev != ' ' && prev != '='
}
