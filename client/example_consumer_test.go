package client_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/braidstream/braid/client"
)

// Consume a stream as a member of a group: records are committed only
// after the handler returned nil for them.
func ExampleConsumer_Run() {
	c, err := client.NewConsumer([]string{"127.0.0.1:9092"}, "billing", []string{"orders"},
		client.WithOnAssigned(func(_ context.Context, s client.Shards) { log.Printf("assigned %v", s) }),
		client.WithOnRevoked(func(_ context.Context, s client.Shards) { log.Printf("revoked %v", s) }))
	if err != nil {
		log.Fatal(err)
	}
	// Stop on Ctrl-C; Close commits what was handled and leaves the group.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = c.Run(ctx, func(ctx context.Context, msgs []client.Message) error {
		for _, m := range msgs {
			fmt.Printf("%s/%d@%d %s=%s\n", m.Stream, m.Shard, m.Offset, m.Key, m.Value)
		}
		return nil
	})
	log.Printf("run: %v", err)
	if err := c.Close(context.Background()); err != nil {
		log.Print(err)
	}
}

// Read a whole stream without a group, in per-key order across splits and
// merges.
func ExampleReader_Run() {
	r, err := client.NewReader([]string{"127.0.0.1:9092"}, "orders", client.WithReaderAdminAddr("127.0.0.1:8080"))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = r.Run(ctx, func(_ context.Context, msgs []client.Message) error {
		for _, m := range msgs {
			fmt.Printf("%s=%s\n", m.Key, m.Value)
		}
		return nil
	})
	log.Printf("run: %v", err)
}

// An exactly-once pipeline: each order's upper-cased copy lands in
// "orders-upper" once, even if the process dies and is restarted.
func ExampleTransformer_Run() {
	upper := func(_ context.Context, in []client.Message) ([]*client.Record, error) {
		out := make([]*client.Record, 0, len(in))
		for _, m := range in {
			out = append(out, &client.Record{Stream: "orders-upper", Key: m.Key, Value: bytes.ToUpper(m.Value)})
		}
		return out, nil
	}
	// Keep the transactional id across restarts of this instance.
	t, err := client.NewTransformer([]string{"127.0.0.1:9092"}, "upper", []string{"orders"}, "upper-0", upper)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close(context.Background())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log.Printf("run: %v", t.Run(ctx))
}
