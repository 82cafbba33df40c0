package ldap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// A wire is a second connection of a pull, used for its paged searches.
//
// go-ldap decodes every message into a tree of asn1-ber packets, a few
// hundred allocations an entry, on one reader goroutine: reading 100,000
// people took about 2.5 times as long as ldapsearch for that alone. The
// wire reads a search's answers itself: one buffer for the message, and an
// entry's attribute values cut from one string. Requests are still encoded
// with asn1-ber and go-ldap (CompileFilter, the paging control), and every
// message other than an entry (a search's result, the bind's, StartTLS's)
// is decoded by them too, so result codes, referrals and controls are
// read the same way as on the go-ldap connection.
//
// A wire does one thing at a time: searches made while an entry is handled
// (range retrieval, or any other search from fn) go to the go-ldap
// connection.
type wire struct {
	nc      net.Conn
	r       *bufio.Reader
	buf     []byte // the message being read
	id      int64  // the last message id sent
	timeout time.Duration
	// broken is set once a message was left half read or an exchange
	// failed; the wire is not used again.
	broken bool
	// busy is set while a page is read: a search made from fn then goes
	// to the go-ldap connection.
	busy bool
	stop func() bool
}

// maxMessage bounds one LDAP message read by a wire. An entry with all of
// seatsync's attributes is a few kilobytes even with thousands of groups;
// a length past this is a broken stream, not an entry.
const maxMessage = 64 << 20

// BER tags of the messages a wire reads.
const (
	tagSequence     = 0x30
	tagSet          = 0x31
	tagInteger      = 0x02
	tagOctetString  = 0x04
	tagEntry        = 0x60 | goldap.ApplicationSearchResultEntry     // [APPLICATION 4] constructed
	tagDone         = 0x60 | goldap.ApplicationSearchResultDone      // [APPLICATION 5] constructed
	tagReference    = 0x60 | goldap.ApplicationSearchResultReference // [APPLICATION 19] constructed
	tagExtendedResp = 0x60 | goldap.ApplicationExtendedResponse      // [APPLICATION 24] constructed
)

// dialWire opens a wire to url (the URL the pull's go-ldap connection
// reached), with the same TLS and bind. It is closed when ctx ends.
func (s *source) dialWire(ctx context.Context, url string) (*wire, error) {
	nc, tc, _, err := s.dialNet(ctx, url)
	if err != nil {
		return nil, err
	}
	w := &wire{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), timeout: s.timeout}
	w.stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
	fail := func(stage string, err error) (*wire, error) {
		w.close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("connect %s (second connection): %s: %w", url, stage, err)
	}
	if s.tlsMode == "starttls" {
		req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationExtendedRequest, nil, "Start TLS")
		req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.1466.20037", "TLS Extended Command"))
		if err := w.exchange(req); err != nil {
			return fail("starttls", err)
		}
		tlsConn := tls.Client(nc, tc)
		hctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := tlsConn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return fail("starttls", tlsError(err))
		}
		w.nc = tlsConn
		w.r = bufio.NewReaderSize(tlsConn, 64<<10)
	}
	if s.bindDN != "" {
		req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationBindRequest, nil, "Bind Request")
		req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
		req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, s.bindDN, "User Name"))
		req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, s.password.Reveal(), "Password"))
		if err := w.exchange(req); err != nil {
			return fail("bind as "+s.bindDN, bindError(err))
		}
	}
	return w, nil
}

func (w *wire) close() {
	if w == nil {
		return
	}
	w.stop()
	if !w.broken {
		// An unbind tells the server the connection ends on purpose.
		_ = w.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = w.send(ber.Encode(ber.ClassApplication, ber.TypePrimitive, goldap.ApplicationUnbindRequest, nil, "Unbind Request"), nil)
	}
	_ = w.nc.Close()
}

// send writes one request with the next message id.
func (w *wire) send(op *ber.Packet, controls *ber.Packet) error {
	w.id++
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, w.id, "MessageID"))
	msg.AppendChild(op)
	if controls != nil {
		msg.AppendChild(controls)
	}
	if _, err := w.nc.Write(msg.Bytes()); err != nil {
		w.broken = true
		return goldap.NewError(goldap.ErrorNetwork, err)
	}
	return nil
}

// exchange sends a request that has one response (bind, StartTLS) and
// returns the LDAP error the server answered, if any.
func (w *wire) exchange(op *ber.Packet) error {
	_ = w.nc.SetDeadline(time.Now().Add(w.timeout))
	defer w.nc.SetDeadline(time.Time{})
	if err := w.send(op, nil); err != nil {
		return err
	}
	m, err := w.read()
	if err != nil {
		return err
	}
	pkt, err := ber.DecodePacketErr(m.raw)
	if err != nil {
		return w.malformed(err.Error())
	}
	if err := goldap.GetLDAPError(pkt); err != nil {
		w.broken = true
		return err
	}
	return nil
}

// message is one LDAP message as read: raw is the whole message, op the
// contents of its protocol operation. Both point into the wire's buffer
// and are valid until the next read.
type message struct {
	raw []byte
	tag byte
	op  []byte
}

// read reads the next message for the last request sent. A notice of
// disconnection or a broken stream is a connection error.
func (w *wire) read() (message, error) {
	var m message
	raw, err := w.readMessage()
	if err != nil {
		w.broken = true
		return m, err
	}
	m.raw = raw
	d := decoder{b: raw}
	body, ok := d.expect(tagSequence)
	if !ok {
		return m, w.malformed("the message is not a SEQUENCE")
	}
	d = body.decoder()
	idEl, ok := d.expect(tagInteger)
	if !ok {
		return m, w.malformed("no message id")
	}
	id := parseInt(idEl.b)
	var op element
	if m.tag, op, ok = d.next(); !ok {
		return m, w.malformed("no protocol operation")
	}
	m.op = op.b
	if id == 0 && m.tag == tagExtendedResp {
		w.broken = true
		pkt, _ := ber.DecodePacketErr(raw) // GetLDAPError takes a nil packet too
		err := goldap.GetLDAPError(pkt)
		return m, goldap.NewError(goldap.ErrorNetwork, fmt.Errorf("the server ended the connection (notice of disconnection: %v)", err))
	}
	if id != w.id {
		return m, w.malformed(fmt.Sprintf("answer to message %d while waiting for %d", id, w.id))
	}
	return m, nil
}

func (w *wire) malformed(what string) error {
	w.broken = true
	return goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("malformed LDAP message from the server: %s", what))
}

// readMessage reads one BER element (an LDAPMessage) into w.buf.
func (w *wire) readMessage() ([]byte, error) {
	netErr := func(err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return goldap.NewError(goldap.ErrorNetwork, err)
	}
	w.buf = w.buf[:0]
	tag, err := w.r.ReadByte()
	if err != nil {
		return nil, netErr(err)
	}
	first, err := w.r.ReadByte()
	if err != nil {
		return nil, netErr(err)
	}
	w.buf = append(w.buf, tag, first)
	n := int(first)
	if first&0x80 != 0 {
		k := int(first & 0x7f)
		if k == 0 || k > 4 {
			return nil, goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("malformed LDAP message from the server: length of %d bytes", k))
		}
		n = 0
		for range k {
			b, err := w.r.ReadByte()
			if err != nil {
				return nil, netErr(err)
			}
			w.buf = append(w.buf, b)
			n = n<<8 | int(b)
		}
	}
	if n > maxMessage {
		return nil, goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("LDAP message of %d bytes, over the limit of %d", n, maxMessage))
	}
	head := len(w.buf)
	w.buf = append(w.buf, make([]byte, n)...)
	if _, err := io.ReadFull(w.r, w.buf[head:]); err != nil {
		return nil, netErr(err)
	}
	return w.buf, nil
}

// page sends one search request with controls and hands each entry of the
// answer to fn and each search reference to ref. It returns the search's
// result message, decoded. When fn fails, its error is returned as fnErr;
// the rest of the page is then left unread and the wire is not used again.
func (w *wire) page(q query, controls []goldap.Control, fn func(*goldap.Entry) error, ref func(string)) (done *ber.Packet, fnErr, err error) {
	if w.broken {
		return nil, nil, goldap.NewError(goldap.ErrorNetwork, errors.New("the connection is unusable after an earlier failure"))
	}
	w.busy = true
	defer func() { w.busy = false }()
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchRequest, nil, "Search Request")
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, q.base, "Base DN"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(q.scope), "Scope"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(goldap.NeverDerefAliases), "Deref Aliases"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Size Limit"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Time Limit"))
	req.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "Types Only"))
	filter, err := goldap.CompileFilter(q.filter)
	if err != nil {
		return nil, nil, err
	}
	req.AppendChild(filter)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	for _, a := range q.attrs {
		attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a, "Attribute"))
	}
	req.AppendChild(attrs)
	var ctls *ber.Packet
	if len(controls) > 0 {
		ctls = ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		for _, c := range controls {
			ctls.AppendChild(c.Encode())
		}
	}
	_ = w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	if err := w.send(req, ctls); err != nil {
		return nil, nil, err
	}
	for {
		// Each message must come within timeout; the time fn takes does
		// not count.
		_ = w.nc.SetReadDeadline(time.Now().Add(w.timeout))
		m, err := w.read()
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				return nil, nil, fmt.Errorf("no answer within timeout %s: %w", w.timeout, context.DeadlineExceeded)
			}
			return nil, nil, err
		}
		switch m.tag {
		case tagEntry:
			e, err := decodeEntry(m.op)
			if err != nil {
				return nil, nil, w.malformed(err.Error())
			}
			if err := fn(e); err != nil {
				w.broken = true
				return nil, err, nil
			}
		case tagReference:
			d := decoder{b: m.op}
			if uri, ok := d.expect(tagOctetString); ok {
				ref(string(uri.b))
			}
		case tagDone:
			pkt, err := ber.DecodePacketErr(m.raw)
			if err != nil {
				return nil, nil, w.malformed(err.Error())
			}
			return pkt, nil, nil
		default:
			return nil, nil, w.malformed(fmt.Sprintf("unexpected operation tag %#x in a search", m.tag))
		}
	}
}

// decodeEntry decodes a SearchResultEntry:
//
//	SEQUENCE { objectName OCTET STRING,
//	           attributes SEQUENCE OF SEQUENCE { type OCTET STRING, vals SET OF OCTET STRING } }
//
// The DN, the attribute names and the values are all cut from one string
// copy of op, with three allocations besides that copy. ByteValues is left
// empty: a raw value (objectGUID) is its string's bytes.
func decodeEntry(op []byte) (*goldap.Entry, error) {
	d := decoder{b: op}
	dn, ok := d.expect(tagOctetString)
	if !ok {
		return nil, errors.New("search entry without a DN")
	}
	list, ok := d.expect(tagSequence)
	if !ok {
		return nil, errors.New("search entry without attributes")
	}
	// First pass: check the shape and count.
	nAttrs, nVals := 0, 0
	for l := list.decoder(); !l.done(); nAttrs++ {
		a, ok := l.expect(tagSequence)
		if !ok {
			return nil, errors.New("malformed attribute in a search entry")
		}
		ad := a.decoder()
		if _, ok := ad.expect(tagOctetString); !ok {
			return nil, errors.New("attribute without a type in a search entry")
		}
		vals, ok := ad.expect(tagSet)
		if !ok {
			return nil, errors.New("attribute without a value set in a search entry")
		}
		for vd := vals.decoder(); !vd.done(); nVals++ {
			if _, ok := vd.expect(tagOctetString); !ok {
				return nil, errors.New("malformed value in a search entry")
			}
		}
	}
	// Second pass: fill, knowing the shape is right.
	str := string(op)
	cut := func(el element) string { return str[el.off : el.off+len(el.b)] }
	e := &goldap.Entry{DN: cut(dn), Attributes: make([]*goldap.EntryAttribute, nAttrs)}
	attrs := make([]goldap.EntryAttribute, nAttrs)
	values := make([]string, 0, nVals)
	l := list.decoder()
	for i := range attrs {
		a, _ := l.expect(tagSequence)
		ad := a.decoder()
		name, _ := ad.expect(tagOctetString)
		vals, _ := ad.expect(tagSet)
		first := len(values)
		for vd := vals.decoder(); !vd.done(); {
			v, _ := vd.expect(tagOctetString)
			values = append(values, cut(v))
		}
		attrs[i] = goldap.EntryAttribute{Name: cut(name), Values: values[first:len(values):len(values)]}
		e.Attributes[i] = &attrs[i]
	}
	return e, nil
}

// decoder reads BER elements with one-byte tags and definite lengths (all
// LDAP uses) from b, which starts at offset off of the buffer decoded.
type decoder struct {
	b   []byte
	off int
}

// element is one element's contents and their offset in the buffer.
type element struct {
	b   []byte
	off int
}

func (el element) decoder() decoder { return decoder(el) }

func (d *decoder) done() bool { return len(d.b) == 0 }

// next reads one element: its tag and contents.
func (d *decoder) next() (tag byte, el element, ok bool) {
	if len(d.b) < 2 || d.b[0]&0x1f == 0x1f {
		return 0, el, false
	}
	tag = d.b[0]
	n, i := int(d.b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(d.b) < 2+k {
			return 0, el, false
		}
		n = 0
		for _, c := range d.b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		i += k
	}
	if n < 0 || n > len(d.b)-i {
		return 0, el, false
	}
	el = element{b: d.b[i : i+n], off: d.off + i}
	d.b, d.off = d.b[i+n:], d.off+i+n
	return tag, el, true
}

// expect reads one element that must have tag.
func (d *decoder) expect(tag byte) (element, bool) {
	t, el, ok := d.next()
	return el, ok && t == tag
}

// parseInt reads a BER INTEGER of up to 8 bytes.
func parseInt(b []byte) int64 {
	if len(b) == 0 || len(b) > 8 {
		return -1
	}
	v := int64(int8(b[0]))
	for _, c := range b[1:] {
		v = v<<8 | int64(c)
	}
	return v
}
