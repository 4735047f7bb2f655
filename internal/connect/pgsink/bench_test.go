package pgsink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/connect/pgtest"
)

// BenchmarkPut writes 1 KiB JSON rows, 500 records a Put (one
// transaction each), and reports rows/s.
//
//	go test -run '^$' -bench Put ./internal/connect/pgsink/
func BenchmarkPut(b *testing.B) {
	for _, mode := range []string{"insert", "upsert"} {
		b.Run(mode, func(b *testing.B) {
			url, db := pgtest.Schema(b)
			if _, err := db.Exec(context.Background(), "create table rows (id bigint primary key, name text, n int, payload text)"); err != nil {
				b.Fatal(err)
			}
			cfg := map[string]any{"url": url, "table": "rows", "mode": mode}
			if mode == "upsert" {
				cfg["key_columns"] = []string{"id"}
				cfg["columns"] = map[string]string{"id": "id", "name": "name", "n": "n", "payload": "payload"}
			}
			s := openSink(b, "bench", cfg)
			if _, err := s.Open(context.Background(), nil); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			pad := strings.Repeat("x", 950)
			const perPut = 500
			recs := make([]connect.Record, 0, perPut)
			b.SetBytes(1024)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				id := i
				if mode == "upsert" {
					id = i % 5000 // every key is written again
				}
				recs = append(recs, connect.Record{Stream: "bench", Offset: int64(i),
					Value: []byte(fmt.Sprintf(`{"id":%d,"name":"row %d","n":%d,"payload":"%s"}`, id, i, i, pad))})
				if len(recs) == perPut || i == b.N-1 {
					if err := s.Put(context.Background(), recs); err != nil {
						b.Fatal(err)
					}
					recs = recs[:0]
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
