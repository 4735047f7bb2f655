package braidtest

import (
	"net"
	"net/http"
	"testing"
)

// Start chooses new ports when braid finds one of its ports taken: the
// first choice here is a port this test holds.
func TestStartRetriesATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	pickAddr = func(tb testing.TB) string {
		calls++
		if calls == 3 { // the first start's Kinesis address
			return taken.Addr().String()
		}
		return FreeAddr(tb)
	}
	defer func() { pickAddr = FreeAddr }()

	p := Start(t)
	if calls != 6 {
		t.Errorf("chose %d ports, want 6 (two starts of three)", calls)
	}
	resp, err := http.Get("http://" + p.HTTPAddr + "/healthz")
	if err != nil {
		t.Fatalf("the node Start returned does not answer: %v", err)
	}
	resp.Body.Close()
}
