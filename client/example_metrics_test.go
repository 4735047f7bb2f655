package client_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/client"
)

// Count produced records and their latency with plain callbacks; a metrics
// library plugs in the same way (docs/sdk.md wires Prometheus).
func ExampleWithProducerHooks() {
	var produced, failed atomic.Int64
	var latencyNanos atomic.Int64
	p, err := client.NewProducer([]string{"127.0.0.1:9092"}, client.WithProducerHooks(client.ProducerHooks{
		OnProduced: func(stream string, shard int32, bytes int, latency time.Duration) {
			produced.Add(1)
			latencyNanos.Add(int64(latency))
		},
		OnProduceError: func(stream string, err error) { failed.Add(1) },
	}))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 100 {
		p.ProduceAsync(&client.Record{Stream: "orders", Value: fmt.Appendf(nil, "%d", i)}, nil)
	}
	if err := p.Close(ctx); err != nil { // no hook runs after Close returns
		log.Fatal(err)
	}
	st := p.Stats()
	fmt.Printf("%d produced (%d bytes), %d failed, mean latency %v\n",
		st.Produced, st.ProducedBytes, st.Errors, time.Duration(latencyNanos.Load()/max(produced.Load(), 1)))
}
