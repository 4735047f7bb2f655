package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { register(newProduceCmd) }

// maxReportedFailures caps per-record error lines; a missing stream would
// otherwise print one line per input line.
const maxReportedFailures = 10

// interruptFlushTimeout bounds the flush after Ctrl-C: the user asked to
// stop, so we send what is buffered but do not wait out the full delivery
// timeout.
const interruptFlushTimeout = 5 * time.Second

type produceOptions struct {
	stream          string
	value           string
	valueSet        bool
	key             string
	keySet          bool
	keySep          string
	headers         []string
	partition       int32
	verbose         bool
	deliveryTimeout time.Duration
	acks            *enumFlag
	compression     *enumFlag
}

func newProduceCmd() *cobra.Command {
	f := &clientFlags{}
	o := &produceOptions{acks: newAcksFlag(), compression: newCompressionFlag()}
	cmd := &cobra.Command{
		Use:   "produce STREAM",
		Short: "Write records to a stream from stdin or a flag",
		Long: `Write records to a stream. Each line read from stdin becomes one record (the
trailing newline is dropped; empty lines become empty records). With --value,
exactly one record is written and stdin is not read.

--key sets the same key on every record; --key-separator instead splits each
line at the first separator into key and value (a line without the separator
is an error). Records without a key and without --partition are spread over
shards by the client's partitioner; records with a key go to the shard their
key hashes to.

Nothing is printed on success unless --verbose is given, which prints each
record's partition@offset to stderr. The command exits non-zero if any record
fails.

Examples:
  echo hello | braid produce greetings
  braid produce greetings --value 'hello world' --key user-42
  printf 'user-1:signed up\nuser-2:logged in\n' | braid produce events --key-separator :
  braid produce events --header source=cli --header version=2 --partition 0 < events.txt
  braid produce logs --acks 1 --compression zstd --verbose < app.log`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.stream = args[0]
			o.valueSet = cmd.Flags().Changed("value")
			o.keySet = cmd.Flags().Changed("key")
			return runProduce(cmd.Context(), f, o, cmd.InOrStdin(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&o.value, "value", "", "produce exactly this one value instead of reading stdin")
	fl.StringVar(&o.key, "key", "", "key for every record")
	fl.StringVar(&o.keySep, "key-separator", "", "split each line at the first occurrence of this string into key and value")
	fl.StringArrayVar(&o.headers, "header", nil, "record header as key=value (repeatable)")
	fl.Int32Var(&o.partition, "partition", -1, "write every record to this shard (-1 = let the partitioner choose)")
	fl.Var(o.acks, "acks", "acknowledgements to wait for: all (all in-sync replicas), 1 (leader only), 0 (none)")
	fl.Var(o.compression, "compression", "batch compression codec")
	fl.DurationVar(&o.deliveryTimeout, "delivery-timeout", 30*time.Second, "fail a record not acknowledged within this time (0 = retry forever)")
	fl.BoolVarP(&o.verbose, "verbose", "v", false, "print partition@offset of every record to stderr")
	cmd.MarkFlagsMutuallyExclusive("key", "key-separator")
	return cmd
}

func runProduce(ctx context.Context, f *clientFlags, o *produceOptions, stdin io.Reader, stderr io.Writer) error {
	headers, err := parseHeaders(o.headers)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(o.stream),
		// The broker does not support idempotent producers yet.
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(acksOpt(o.acks.value)),
		kgo.ProducerBatchCompression(compressionCodec(o.compression.value)),
	}
	if o.deliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(o.deliveryTimeout))
	}
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := f.newClient(opts...)
	if err != nil {
		return err
	}
	closeClient := sync.OnceFunc(cl.Close)
	defer closeClient()

	if err := checkProduceTarget(ctx, f, cl, o.stream, o.partition); err != nil {
		return err
	}

	p := &producer{
		stream:  o.stream,
		verbose: o.verbose,
		json:    f.json(),
		noAcks:  o.acks.value == "0",
		stderr:  stderr,
	}
	// Records get a context that outlives Ctrl-C: an interrupt stops taking
	// input, but records already handed to the client are still delivered
	// by the flush below.
	recCtx := context.WithoutCancel(ctx)

	var (
		lines    <-chan []byte
		readErrs <-chan error
	)
	if o.valueSet {
		// One record, verbatim: an empty --value or one with newlines in it
		// must not be reinterpreted as lines.
		one := make(chan []byte, 1)
		one <- []byte(o.value)
		close(one)
		lines = one
	} else {
		var stopReading func()
		lines, readErrs, stopReading = readLines(stdin)
		defer stopReading()
	}
	var inputErr error
	interrupted := false
loop:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			n := p.sent + 1
			r := &kgo.Record{Value: line, Headers: headers, Context: recCtx}
			if o.partition >= 0 {
				r.Partition = o.partition
			}
			switch {
			case o.keySet:
				r.Key = []byte(o.key)
			case o.keySep != "":
				k, v, found := bytes.Cut(line, []byte(o.keySep))
				if !found {
					inputErr = fmt.Errorf("line %d: key separator %q not found", n, o.keySep)
					break loop
				}
				r.Key, r.Value = k, v
			}
			p.sent = n
			// Produce blocks only while the client's buffer is full; ctx
			// lets Ctrl-C interrupt that wait.
			cl.Produce(ctx, r, func(r *kgo.Record, err error) { p.done(n, r, err) })
		}
	}
	if inputErr == nil && readErrs != nil {
		select {
		case err := <-readErrs:
			inputErr = fmt.Errorf("read input: %w", err)
		default:
		}
	}

	var (
		flushCtx context.Context
		cancel   context.CancelFunc
	)
	switch {
	case interrupted:
		flushCtx, cancel = context.WithTimeout(recCtx, interruptFlushTimeout)
	case o.deliveryTimeout > 0:
		// Records fail on their own after the delivery timeout; the margin
		// only guards against a flush that never returns.
		flushCtx, cancel = context.WithTimeout(ctx, o.deliveryTimeout+5*time.Second)
	default:
		flushCtx, cancel = context.WithCancel(ctx)
	}
	flushErr := cl.Flush(flushCtx)
	cancel()
	// Close fails whatever the flush could not deliver, so every promise has
	// run and the counters below are final.
	closeClient()

	failed := p.failed.Load()
	if o.verbose && !p.json {
		fmt.Fprintf(stderr, "produced %d of %d record%s to %q\n", p.sent-failed, p.sent, plural(p.sent), o.stream)
	}
	switch {
	case inputErr != nil:
		return inputErr
	case failed > 0:
		return fmt.Errorf("%d of %d record%s failed; first error: %w", failed, p.sent, plural(p.sent), p.firstError())
	case interrupted:
		return fmt.Errorf("interrupted after %d record%s: %w", p.sent, plural(p.sent), ctx.Err())
	case flushErr != nil:
		return fmt.Errorf("flush records: %w", flushErr)
	}
	return nil
}

// producer collects promise results. kgo calls promises serially, but the
// counters are read from the main goroutine, hence the atomics.
type producer struct {
	stream  string
	verbose bool
	json    bool
	noAcks  bool
	stderr  io.Writer

	sent     int64 // owned by the producing goroutine
	failed   atomic.Int64
	mu       sync.Mutex
	firstErr error
}

func (p *producer) firstError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}

func (p *producer) done(n int64, r *kgo.Record, err error) {
	if err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			err = streamError("produce to", p.stream, err, "")
		}
		p.mu.Lock()
		if p.firstErr == nil {
			p.firstErr = err
		}
		p.mu.Unlock()
		if failed := p.failed.Add(1); failed <= maxReportedFailures {
			fmt.Fprintf(p.stderr, "record %d: %v\n", n, err)
		} else if failed == maxReportedFailures+1 {
			fmt.Fprintln(p.stderr, "further record errors not shown")
		}
		return
	}
	if !p.verbose {
		return
	}
	// With acks=0 the broker never reports where the record landed.
	offset := r.Offset
	if p.noAcks {
		offset = -1
	}
	if p.json {
		b, _ := json.Marshal(struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		}{r.Partition, offset})
		fmt.Fprintf(p.stderr, "%s\n", b)
		return
	}
	if offset < 0 {
		fmt.Fprintf(p.stderr, "%d@?\n", r.Partition)
		return
	}
	fmt.Fprintf(p.stderr, "%d@%d\n", r.Partition, offset)
}

// checkProduceTarget fails fast with a clear message when the stream or the
// requested shard does not exist; otherwise kgo would retry for a while and
// then fail every record with UNKNOWN_TOPIC_OR_PARTITION.
func checkProduceTarget(ctx context.Context, f *clientFlags, cl *kgo.Client, stream string, partition int32) error {
	ctx, cancel := adminContext(ctx)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, stream)
	if err != nil {
		return requestError(fmt.Sprintf("look up stream %q", stream), f, err)
	}
	td, ok := md.Topics[stream]
	if !ok {
		return fmt.Errorf("look up stream %q: broker response did not mention the stream", stream)
	}
	if td.Err != nil {
		return streamError("produce to", stream, td.Err, "")
	}
	if partition >= 0 {
		if _, ok := td.Partitions[partition]; !ok {
			return fmt.Errorf("stream %q has %d shard%s; --partition %d does not exist",
				stream, len(td.Partitions), plural(int64(len(td.Partitions))), partition)
		}
	}
	return nil
}

// readLines reads lines on its own goroutine so that Ctrl-C is noticed
// even while a terminal read blocks. stop releases the goroutine if the
// caller quits early; a read already blocked in the OS is abandoned, which
// is harmless because the process is about to exit.
func readLines(r io.Reader) (lines <-chan []byte, errs <-chan error, stop func()) {
	out := make(chan []byte, 256)
	errc := make(chan error, 1)
	quit := make(chan struct{})
	go func() {
		defer close(out)
		br := bufio.NewReaderSize(r, 1<<20)
		for {
			// ReadBytes returns a fresh slice each time, so it can be handed
			// to the client without copying; unlike bufio.Scanner it has no
			// line length limit.
			b, err := br.ReadBytes('\n')
			if len(b) > 0 {
				b = bytes.TrimSuffix(b, []byte{'\n'})
				b = bytes.TrimSuffix(b, []byte{'\r'})
				select {
				case out <- b:
				case <-quit:
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
					errc <- err
				}
				return
			}
		}
	}()
	var once sync.Once
	return out, errc, func() { once.Do(func() { close(quit) }) }
}

// parseHeaders turns repeated key=value flags into record headers; order
// and duplicates are kept because Kafka headers are a list, not a map.
func parseHeaders(kvs []string) ([]kgo.RecordHeader, error) {
	var hs []kgo.RecordHeader
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want key=value", kv)
		}
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return hs, nil
}
