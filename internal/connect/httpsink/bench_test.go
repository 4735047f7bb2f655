package httpsink

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/connect"
)

// BenchmarkSink measures records/s and body MB/s into a loopback
// receiver that reads and drops each body: the sink's encoding, batching
// and HTTP cost, not a receiver's.
func BenchmarkSink(b *testing.B) {
	for _, format := range []string{formatJSONArray, formatJSONL} {
		b.Run(format, func(b *testing.B) {
			var bodyBytes atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				bodyBytes.Add(n)
			}))
			defer srv.Close()
			raw, _ := json.Marshal(map[string]any{"url": srv.URL, "format": format})
			s, err := New(connect.Env{Name: "bench"}, raw)
			if err != nil {
				b.Fatal(err)
			}
			s.Open(b.Context(), nil) //nolint:errcheck
			defer s.Close()
			const chunk = 1000
			recs := make([]connect.Record, chunk)
			value := fmt.Appendf(nil, `{"id":0,"customer":"c-000042","status":"paid","total":1234.5,"items":[%s]}`,
				`{"sku":"sku-1","qty":2},{"sku":"sku-2","qty":1}`)
			for i := range recs {
				recs[i] = connect.Record{Stream: "orders", Timestamp: time.Now(), Key: []byte(`"c-000042"`), Value: value}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += chunk {
				n := min(chunk, b.N-done)
				for i := range recs[:n] {
					recs[i].Offset = int64(done + i)
				}
				if err := s.Put(b.Context(), recs[:n]); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Flush(b.Context()); err != nil {
				b.Fatal(err)
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/sec, "records/s")
			b.ReportMetric(float64(bodyBytes.Load())/sec/1e6, "body-MB/s")
		})
	}
}
