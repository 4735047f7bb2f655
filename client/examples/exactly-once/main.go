// Command exactly-once runs a consume-transform-produce pipeline with the
// Braid Go SDK's Transformer: it reads an input stream in a consumer
// group, upper-cases each value, and writes the result to an output
// stream; each batch's output and its input offsets commit in one
// transaction, so readers of the output (read committed) see each input's
// output exactly once, even if this process is killed and restarted with
// the same -txn-id.
//
// Run it against a local node, feeding it -seed input records first:
//
//	braid serve --data-dir /tmp/braid &
//	go -C client run ./examples/exactly-once -brokers 127.0.0.1:9092 -seed 100 -n 100
//
// With -n 0 it runs until interrupted (Ctrl-C), then closes cleanly.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/client"
	"github.com/braidstream/braid/client/admin"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated host:port of Braid Kafka listeners")
	in := flag.String("in", "eo-input", "input stream (created if missing)")
	out := flag.String("out", "eo-output", "output stream (created if missing)")
	group := flag.String("group", "eo-pipeline", "consumer group of the pipeline")
	txnID := flag.String("txn-id", "eo-pipeline-0", "transactional id: the same for a restarted instance, distinct per concurrent instance")
	seed := flag.Int("seed", 0, "produce this many input records before starting")
	n := flag.Int("n", 0, "stop after transforming this many input records (0: run until interrupted)")
	timeout := flag.Duration("timeout", 0, "give up after this long (0: no limit)")
	flag.Parse()
	if *seed < 0 || *n < 0 {
		log.Fatal("-seed and -n must not be negative")
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if *timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	err := run(ctx, strings.Split(*brokers, ","), *in, *out, *group, *txnID, *seed, *n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "exactly-once:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, seeds []string, in, out, group, txnID string, seed, n int) error {
	adm, err := admin.New(seeds, "")
	if err != nil {
		return err
	}
	defer adm.Close()
	for _, s := range []string{in, out} {
		if err := adm.CreateStream(ctx, s, 2, nil); err != nil && !errors.Is(err, admin.ErrStreamExists) {
			return err
		}
	}
	if seed > 0 {
		if err := produceInput(ctx, seeds, in, seed); err != nil {
			return err
		}
		fmt.Printf("produced %d input records to %s\n", seed, in)
	}

	// transformed counts inputs of batches handed to the function; a
	// batch that is aborted and read again counts twice, which is fine
	// for deciding when to stop.
	var transformed atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	upper := func(_ context.Context, msgs []client.Message) ([]*client.Record, error) {
		recs := make([]*client.Record, len(msgs))
		for i, m := range msgs {
			recs[i] = &client.Record{Stream: out, Key: m.Key, Value: bytes.ToUpper(m.Value)}
		}
		if n > 0 && transformed.Add(int64(len(msgs))) >= int64(n) {
			stop() // Run finishes this batch's commit, then returns
		}
		return recs, nil
	}
	t, err := client.NewTransformer(seeds, group, []string{in}, txnID, upper)
	if err != nil {
		return err
	}
	err = t.Run(runCtx)
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cerr := t.Close(closeCtx); cerr != nil && !errors.Is(cerr, client.ErrClosed) {
		log.Printf("close: %v", cerr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Printf("transformed %d input records from %s into %s\n", transformed.Load(), in, out)
	return nil
}

func produceInput(ctx context.Context, seeds []string, stream string, n int) error {
	p, err := client.NewProducer(seeds)
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	// One atomic batch: the pipeline sees all of these or none.
	recs := make([]*client.Record, n)
	for i := range recs {
		recs[i] = &client.Record{Stream: stream, Key: fmt.Appendf(nil, "k%d", i%8), Value: fmt.Appendf(nil, "hello %d", i)}
	}
	_, err = p.ProduceBatch(ctx, recs)
	return err
}
