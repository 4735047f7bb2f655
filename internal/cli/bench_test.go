package cli

import "testing"

// TestLoopbackAddr: the CPU line adds node and client up only for a node
// on this machine's loopback.
func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9644": true,
		"127.3.2.1:9644": true,
		"[::1]:9644":     true,
		"localhost:9644": true,
		"10.0.0.5:9644":  false,
		"[fe80::1]:9644": false,
		"braid-0:9644":   false,
		"127.0.0.1":      false, // no port: not an address
		"":               false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
