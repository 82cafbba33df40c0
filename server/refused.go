package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Refused requests (401) are counted in seatsync_http_unauthorized_total
// and logged at warn level, at most once per refusalWindow for each client
// address; the line says how many were refused from that address since its
// last line. The addresses remembered are bounded, so a flood of addresses
// cannot grow memory without limit: beyond maxRefusalClients, the others
// share one line per window.
const (
	refusalWindow     = time.Minute
	maxRefusalClients = 1024
)

// refusalLog decides which refused requests get a log line.
type refusalLog struct {
	log    *zap.Logger
	window time.Duration
	max    int

	mu      sync.Mutex
	clients map[string]*refusals
	others  refusals // from addresses beyond max
	swept   time.Time
}

// refusals are one client's refused requests.
type refusals struct {
	logged  time.Time // when its last line was written (zero: never)
	pending int       // refused since then, not in a line yet
	why     string    // why the last one was refused
}

func newRefusalLog(log *zap.Logger, window time.Duration, max int) *refusalLog {
	return &refusalLog{log: log, window: window, max: max, clients: map[string]*refusals{}}
}

// clientAddress is the address a request came from: the IP of the
// connection's remote end. Headers such as X-Forwarded-For are not used:
// any client can write them.
func clientAddress(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// refused records one refused request. why says what was wrong ("no
// token", "wrong token"); the token itself is never logged.
func (l *refusalLog) refused(r *http.Request, why string, now time.Time) {
	client := clientAddress(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now, client)
	c, ok := l.clients[client]
	if !ok && len(l.clients) < l.max {
		c = &refusals{}
		l.clients[client] = c
	}
	if c == nil {
		if n, due := l.others.add(now, l.window); due {
			l.othersLine(n)
		}
		return
	}
	c.why = why
	if n, due := c.add(now, l.window); due {
		l.log.Warn("http: refused a request without the right token",
			zap.String("client", client), zap.Int("refused", n), zap.String("why", why),
			zap.String("method", r.Method), zap.String("path", r.URL.Path))
	}
}

func (l *refusalLog) othersLine(n int) {
	l.log.Warn("http: refused requests without the right token from more client addresses than are tracked",
		zap.Int("refused", n), zap.Int("addresses_tracked", l.max))
}

// add counts a refusal and reports whether a line is due (the first one,
// or the first after a quiet window), with the count since the last line.
func (c *refusals) add(now time.Time, window time.Duration) (int, bool) {
	c.pending++
	if !c.logged.IsZero() && now.Sub(c.logged) < window {
		return 0, false
	}
	n := c.pending
	c.logged, c.pending = now, 0
	return n, true
}

// sweep looks, at most once a window, at the clients whose last line is
// a window old. Those with refusals not in a line yet get their line now;
// the others are forgotten, so the map holds only recent addresses.
// current, the client being refused, is left to refused, which writes its
// line.
func (l *refusalLog) sweep(now time.Time, current string) {
	if now.Sub(l.swept) < l.window {
		return
	}
	l.swept = now
	if o := &l.others; o.pending > 0 && now.Sub(o.logged) >= l.window {
		l.othersLine(o.pending)
		o.logged, o.pending = now, 0
	}
	for client, c := range l.clients {
		switch {
		case client == current || now.Sub(c.logged) < l.window:
		case c.pending > 0:
			l.log.Warn("http: refused a request without the right token",
				zap.String("client", client), zap.Int("refused", c.pending), zap.String("why", c.why))
			c.logged, c.pending = now, 0
		default:
			delete(l.clients, client)
		}
	}
}
