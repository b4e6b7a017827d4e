package server

import (
	"io"
	"net"
	"sync"
)

// clientListener caps the connections each client holds open at once
// (Config.MaxConnsPerClient). A connection over the cap is closed as soon as
// it is accepted, before anything is read from it: holding it open, even
// until a header timeout, is what the cap must prevent (ATTACKS.md 44).
type clientListener struct {
	net.Listener
	max int
	m   *metrics

	mu    sync.Mutex
	conns map[string]int // by clientKey
}

func newClientListener(ln net.Listener, max int, m *metrics) *clientListener {
	return &clientListener{Listener: ln, max: max, m: m, conns: map[string]int{}}
}

// Accept returns the next connection whose client is under the cap.
func (l *clientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, ok := clientKey(c.RemoteAddr())
		if !ok {
			return c, nil // not TCP: no client address to count by
		}
		l.mu.Lock()
		if l.conns[key] >= l.max {
			l.mu.Unlock()
			c.Close()
			l.m.refused.Add(1)
			continue
		}
		l.conns[key]++
		l.mu.Unlock()
		l.m.connsOpen.Add(1)
		return &clientConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *clientListener) release(key string) {
	l.mu.Lock()
	if l.conns[key]--; l.conns[key] <= 0 {
		delete(l.conns, key)
	}
	l.mu.Unlock()
	l.m.connsOpen.Add(-1)
}

// clientKey is who a connection is counted against: its IPv4 address, or
// the /64 of its IPv6 address (a host usually has a whole /64, so counting
// by address would not limit it).
func clientKey(a net.Addr) (string, bool) {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return "", false
	}
	ip := t.AddrPort().Addr().Unmap()
	if ip.Is4() {
		return ip.String(), true
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return "", false
	}
	return p.String(), true
}

// clientConn gives its client's slot back when it is closed (once).
type clientConn struct {
	net.Conn
	l    *clientListener
	key  string
	once sync.Once
}

func (c *clientConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// ReadFrom keeps the TCP connection's sendfile path (tiles are files).
func (c *clientConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}
