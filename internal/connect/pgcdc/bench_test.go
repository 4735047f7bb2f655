package pgcdc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/connect/pgtest"
)

// BenchmarkPoll streams b.N inserted 1 KiB rows (transactions of 1000
// rows, written before the clock starts) and reports rows/s through Poll.
//
//	go test -run '^$' -bench Poll ./internal/connect/pgcdc/
func BenchmarkPoll(b *testing.B) {
	url, db := pgtest.Schema(b)
	name := fmt.Sprintf("bench_%d", time.Now().UnixNano()%1e12)
	admin := pgtest.Connect(b, pgtest.URL(b))
	b.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if _, err := admin.Exec(context.Background(), "select pg_drop_replication_slot($1)", "braid_"+name); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = admin.Exec(context.Background(), "drop publication if exists braid_"+name)
	})
	ctx := context.Background()
	var sch string
	if err := db.QueryRow(ctx, "select current_schema()").Scan(&sch); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, "create table rows (id bigint primary key, name text, n int, payload text)"); err != nil {
		b.Fatal(err)
	}
	s, err := New(envFor(name), []byte(fmt.Sprintf(`{"url":%q,"tables":[%q]}`, url, sch+".rows")))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Open(ctx, nil); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for from := 0; from < b.N; from += 1000 {
		to := min(from+1000, b.N)
		if _, err := db.Exec(ctx, "insert into rows select g, 'row ' || g, g, repeat('x', 950) from generate_series($1::bigint, $2::bigint) g", from, to-1); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	got := 0
	for got < b.N {
		recs, pos, err := s.Poll(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got += len(recs)
		if pos != nil {
			if err := s.Committed(ctx, pos); err != nil {
				b.Fatal(err)
			}
		}
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("got %d of %d rows", got, b.N)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
}

func envFor(name string) connect.Env { return connect.Env{Name: name, Delivery: connect.ExactlyOnce} }
