package ldaptest

import (
	"net"
	"sync"
)

// Tripwire is a TCP proxy on a free loopback port in front of a server,
// with which a test makes a server fail in the middle of an answer, at a
// point fixed by the data rather than by the clock: once one connection
// has carried Arm's number of bytes from the server to the client, the
// proxy passes nothing more of that connection on and calls trip, once
// (a test kills or pauses the server there). With closeOnTrip, the
// proxy then closes that client connection too, as a server that died
// would; without it, the client is left waiting, as with a hung server.
//
// Unarmed, it passes everything and counts: MaxBytes is the most one
// connection carried from the server, which tells a test where an answer
// of a known run lies.
type Tripwire struct {
	// URL is ldap://127.0.0.1:PORT of the proxy.
	URL string

	target string
	ln     net.Listener

	mu          sync.Mutex
	after       int64 // 0: unarmed
	trip        func()
	closeOnTrip bool
	tripped     bool
	max         int64
	conns       []net.Conn
	wg          sync.WaitGroup
}

// NewTripwire starts a proxy to target (host:port). Stop it with Close.
func NewTripwire(target string) (*Tripwire, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &Tripwire{URL: "ldap://" + ln.Addr().String(), target: target, ln: ln}
	w.wg.Add(1)
	go w.accept()
	return w, nil
}

// Arm sets the wire: the first connection to carry after bytes from the
// server trips it (after > 0). Counting starts again with each connection.
func (w *Tripwire) Arm(after int64, closeOnTrip bool, trip func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.after, w.closeOnTrip, w.trip, w.tripped = after, closeOnTrip, trip, false
}

// Disarm lets everything through again on new connections.
func (w *Tripwire) Disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.after, w.trip = 0, nil
}

// Tripped reports whether the wire tripped since it was last armed.
func (w *Tripwire) Tripped() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tripped
}

// MaxBytes is the most bytes one connection carried from the server, and
// resets the count.
func (w *Tripwire) MaxBytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.max
	w.max = 0
	return m
}

// Close stops the proxy and closes every connection through it.
func (w *Tripwire) Close() {
	w.mu.Lock()
	for _, c := range w.conns {
		c.Close()
	}
	w.conns = nil
	w.mu.Unlock()
	w.ln.Close()
	w.wg.Wait()
}

func (w *Tripwire) accept() {
	defer w.wg.Done()
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", w.target)
		if err != nil {
			c.Close()
			continue
		}
		w.mu.Lock()
		w.conns = append(w.conns, c, up)
		w.mu.Unlock()
		w.wg.Add(2)
		go w.upstream(up, c)
		go w.downstream(c, up)
	}
}

// upstream passes the client's bytes to the server.
func (w *Tripwire) upstream(up, client net.Conn) {
	defer w.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if _, werr := up.Write(buf[:n]); werr != nil {
				client.Close()
				return
			}
		}
		if err != nil {
			up.Close()
			return
		}
	}
}

// downstream passes the server's bytes to the client, counting them, and
// trips the wire when they reach the armed number.
func (w *Tripwire) downstream(client, up net.Conn) {
	defer w.wg.Done()
	buf := make([]byte, 32<<10)
	var sent int64
	for {
		n, err := up.Read(buf)
		if n > 0 {
			pass, trip := w.count(sent, int64(n))
			if pass > 0 {
				if _, werr := client.Write(buf[:pass]); werr != nil {
					up.Close()
					return
				}
			}
			sent += pass
			if trip != nil {
				trip.fn()
				if trip.close {
					client.Close()
					up.Close()
				}
				// Hold the rest: read and drop, so the server is not
				// blocked, until either side ends.
				for {
					if _, err := up.Read(buf); err != nil {
						return
					}
				}
			}
		}
		if err != nil {
			client.Close()
			return
		}
	}
}

type tripAction struct {
	fn    func()
	close bool
}

// count records n more bytes of a connection that has passed sent, and
// says how many of them to pass on, and what to do when it trips.
func (w *Tripwire) count(sent, n int64) (int64, *tripAction) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.max = max(w.max, sent+n)
	if w.after <= 0 || w.tripped || sent+n < w.after {
		return n, nil
	}
	w.tripped = true
	fn := w.trip
	if fn == nil {
		fn = func() {}
	}
	return w.after - sent, &tripAction{fn: fn, close: w.closeOnTrip}
}
