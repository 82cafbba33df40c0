package ldaptest

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// TestTripwire: unarmed it passes everything and counts; armed, the
// connection that reaches the count gets exactly that many bytes, the trip
// runs once, and (with closeOnTrip) the client sees the end.
func TestTripwire(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := bytes.Repeat([]byte("0123456789"), 10_000) // 100 kB a connection
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1)
				if _, err := c.Read(buf); err != nil { // the client's request
					return
				}
				c.Write(payload)
			}()
		}
	}()
	w, err := NewTripwire(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fetch := func() []byte {
		c, err := net.Dial("tcp", w.URL[len("ldap://"):])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("?"))
		got, _ := io.ReadAll(c)
		return got
	}
	if got := fetch(); !bytes.Equal(got, payload) || w.MaxBytes() != int64(len(payload)) {
		t.Fatalf("unarmed: got %d bytes, max %d; want %d", len(got), w.MaxBytes(), len(payload))
	}
	var trips atomic.Int32
	w.Arm(12_345, true, func() { trips.Add(1) })
	if got := fetch(); len(got) != 12_345 || !bytes.Equal(got, payload[:12_345]) || !w.Tripped() || trips.Load() != 1 {
		t.Fatalf("armed: got %d bytes, tripped %v %d times; want 12345, once", len(got), w.Tripped(), trips.Load())
	}
	if got := fetch(); len(got) != len(payload) || trips.Load() != 1 {
		t.Errorf("after the trip: got %d bytes, %d trips; want everything, and no second trip", len(got), trips.Load())
	}
}
