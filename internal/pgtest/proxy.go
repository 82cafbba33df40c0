package pgtest

import (
	"net"
	"net/url"
	"strconv"
	"sync"
)

// Proxy is a TCP proxy on a free loopback port in front of a server, with
// which a test cuts the network between a client and PostgreSQL. Cut is a
// partition, not a crash: the sockets stay open and nothing is closed or
// reset, the bytes simply stop going through either way (held back, as TCP
// would retransmit them), so neither side learns anything until its own
// timeouts tell it. Restore lets the held bytes and new ones through.
type Proxy struct {
	Port   int
	target string
	ln     net.Listener

	mu     sync.Mutex
	cond   *sync.Cond
	cut    bool
	closed bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to 127.0.0.1:targetPort. Stop it with Close.
func NewProxy(targetPort int) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Port: ln.Addr().(*net.TCPAddr).Port, target: net.JoinHostPort("127.0.0.1", strconv.Itoa(targetPort)), ln: ln}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// URL is dsn with its host and port replaced by the proxy's.
func (p *Proxy) URL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port))
	return u.String()
}

// Cut stops all traffic through the proxy, both ways, on open
// connections and new ones, without closing anything.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
}

// Restore lets traffic through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.cond.Broadcast()
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.cut = false
	for _, c := range p.conns {
		c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track records c so Close closes it; false once closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

// serve connects c to the target, once the network is up: during a cut
// a new connection is accepted (the kernel would have) and waits.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	if !p.wait() {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(up) {
		return
	}
	p.wg.Add(2)
	go p.copy(up, c)
	go p.copy(c, up)
}

// wait blocks while the network is cut; false once the proxy is closed.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.cut && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

// copy forwards src to dst. Bytes read during a cut are held until
// Restore; an end of either side is passed on once the network is up.
func (p *Proxy) copy(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if !p.wait() {
			return
		}
		n, err := src.Read(buf)
		if !p.wait() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}
