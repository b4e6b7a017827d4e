package server

import (
	"net"
	"testing"
)

// TestClientKey: a client is an IPv4 address (IPv4-mapped IPv6 included) or
// an IPv6 /64; addresses that are not TCP are not counted.
func TestClientKey(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
		ok   bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7", true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 2}, "192.0.2.7", true},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 3}, "2001:db8:1:2::/64", true},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 4, Zone: "eth0"}, "2001:db8:1:2::/64", true},
		{&net.UnixAddr{Name: "@", Net: "unix"}, "", false},
	} {
		got, ok := clientKey(c.addr)
		if got != c.want || ok != c.ok {
			t.Errorf("clientKey(%v) = %q, %v; want %q, %v", c.addr, got, ok, c.want, c.ok)
		}
	}
}
