package client_test

// These examples need a Braid node on 127.0.0.1:9092, so they have no
// "Output:" comment: go test compiles them but does not run them.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/braidstream/braid/client"
)

// Produce one record and wait until it is durable.
func ExampleProducer_Produce() {
	p, err := client.NewProducer([]string{"127.0.0.1:9092"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.Produce(ctx, &client.Record{
		Stream: "orders",
		Key:    []byte("user-7"),
		Value:  []byte(`{"item":"book","qty":1}`),
	})
	switch {
	case errors.Is(err, client.ErrUnknownStream):
		log.Fatal("create the stream first: braid stream create orders")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("stored in shard %d at offset %d\n", res.Shard, res.Offset)
}

// Produce many records without waiting for each, then wait for all.
func ExampleProducer_ProduceAsync() {
	p, err := client.NewProducer([]string{"127.0.0.1:9092"},
		client.WithLinger(5*time.Millisecond),
		client.WithCompression(client.CompressionZstd),
	)
	if err != nil {
		log.Fatal(err)
	}

	var mu sync.Mutex
	var failed int
	for i := range 1000 {
		rec := &client.Record{Stream: "clicks", Value: fmt.Appendf(nil, "click %d", i)}
		// The callback runs once per record, on a producer goroutine.
		p.ProduceAsync(rec, func(_ client.Result, err error) {
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		})
	}
	// Close waits for every record above, then releases the producer.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("failed:", failed)
}
