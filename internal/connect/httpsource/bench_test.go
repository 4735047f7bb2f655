package httpsource

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/braidstream/braid/internal/connect"
)

// BenchmarkSource measures records/s accepted: 4 callers POST JSON
// lines of 100 records each over loopback while one loop does what the
// runtime does, Poll then Committed (with nothing to write in between,
// so this is the endpoint's own cost).
func BenchmarkSource(b *testing.B) {
	const callers, perReq = 4, 100
	s, err := New(connect.Env{Name: "bench"}, json.RawMessage(`{"listen":"127.0.0.1:9"}`))
	if err != nil {
		b.Fatal(err)
	}
	s.listen = func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }
	if err := s.Open(b.Context(), nil); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	url := "http://" + s.Addr().String() + "/records"
	var body strings.Builder
	for i := 0; i < perReq; i++ {
		fmt.Fprintf(&body, `{"key":"c-%06d","value":{"id":%d,"status":"paid","total":1234.5}}`+"\n", i, i)
	}
	requests := (b.N + perReq - 1) / perReq
	jobs := make(chan struct{}, requests)
	for range requests {
		jobs <- struct{}{}
	}
	close(jobs)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: callers}}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range jobs {
				resp, err := client.Post(url, "application/x-ndjson", strings.NewReader(body.String()))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	for got := 0; got < requests*perReq; {
		recs, pos, err := s.Poll(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		got += len(recs)
		if pos != nil {
			s.Committed(b.Context(), pos) //nolint:errcheck
		}
	}
	wg.Wait()
	b.ReportMetric(float64(requests*perReq)/b.Elapsed().Seconds(), "records/s")
}
