package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/braidstream/braid/client"
	"github.com/braidstream/braid/client/admin"
)

// Write an order and its line items all or nothing: a read_committed
// reader sees every record of the batch or none of it, whichever shards
// the keys route to.
func ExampleProducer_ProduceBatch() {
	p, err := client.NewProducer([]string{"127.0.0.1:9092"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	batch := []*client.Record{
		{Stream: "orders", Key: []byte("order-42"), Value: []byte(`{"total":30}`)},
		{Stream: "order-lines", Key: []byte("order-42/1"), Value: []byte(`{"sku":"book","qty":2}`)},
		{Stream: "order-lines", Key: []byte("order-42/2"), Value: []byte(`{"sku":"pen","qty":1}`)},
	}
	res, err := p.ProduceBatch(ctx, batch)
	var be *client.BatchError
	switch {
	case errors.Is(err, client.ErrBatchUnknown):
		log.Fatal("the commit's answer was lost: the batch is wholly there or wholly absent")
	case errors.As(err, &be):
		log.Fatalf("nothing written (record %d): %v", be.Index, err)
	case err != nil:
		log.Fatal(err)
	}
	for _, r := range res {
		fmt.Printf("%s shard %d offset %d\n", r.Stream, r.Shard, r.Offset)
	}
}

// Keep producing while the stream is split and merged: with the admin
// address, the producer sends each keyed record straight to the shard that
// owns its key, picks up the new layout within moments of each reshard,
// and keeps each key's records in order.
func ExampleWithAdminAddr() {
	p, err := client.NewProducer([]string{"127.0.0.1:9092"},
		client.WithAdminAddr("127.0.0.1:9644"), // braid serve --http-addr
	)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	adm, err := admin.New([]string{"127.0.0.1:9092"}, "127.0.0.1:9644")
	if err != nil {
		log.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	done := make(chan error, 1)
	go func() {
		for i := range 100000 {
			rec := &client.Record{Stream: "events", Key: fmt.Appendf(nil, "device-%d", i%500), Value: fmt.Appendf(nil, "%d", i)}
			p.ProduceAsync(rec, func(_ client.Result, err error) {
				if err != nil {
					log.Print(err)
				}
			})
		}
		done <- p.Flush(ctx)
	}()
	// Double the stream's open shards while records flow.
	st, err := adm.DescribeStream(ctx, "events")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := adm.Scale(ctx, "events", 2*len(st.Open())); err != nil {
		log.Fatal(err)
	}
	if err := <-done; err != nil {
		log.Fatal(err)
	}
}
