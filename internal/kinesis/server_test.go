package kinesis

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/engine"
)

// A client that sends its headers and then trickles its body is cut off
// after ReadTimeout, and the door keeps serving others.
func TestSlowBodyIsCutOff(t *testing.T) {
	eng, err := engine.Open(engine.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s := NewServer(eng, Options{ReadTimeout: 300 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: %sListStreams\r\nContent-Type: %s\r\nContent-Length: 100\r\n\r\n{", targetPrefix, contentJSON)
	began := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Keep trickling a byte now and then; the server must still give up.
	go func() {
		for range 20 {
			time.Sleep(100 * time.Millisecond)
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode == 200 {
			t.Fatalf("slow request answered 200")
		}
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("slow request held for %v, want about 300ms", d)
	}
	// Others are served.
	r, err := http.Post("http://"+ln.Addr().String()+"/", contentJSON, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 400 { // no X-Amz-Target: UnknownOperationException
		t.Fatalf("next request: %d", r.StatusCode)
	}
}
