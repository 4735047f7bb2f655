package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(newConsumeCmd) }

type consumeOptions struct {
	stream    string
	from      string
	partition int32
	count     int64
	timeout   time.Duration
	keySep    string
}

func newConsumeCmd() *cobra.Command {
	f := &clientFlags{}
	o := &consumeOptions{}
	cmd := &cobra.Command{
		Use:   "consume STREAM",
		Short: "Read records from a stream and print them",
		Long: `Read records from a stream and print them to stdout, without a consumer
group (nothing is committed, every run starts where --from says).

--from picks where each shard starts: earliest (the oldest retained record),
latest (only records written from now on) or an offset number. An offset
outside a shard's retained range is moved to the nearest end of that range.

By default the command runs until --count records were printed or until
Ctrl-C. With --timeout it also stops once no record arrived for that long,
which is handy in scripts ("read everything there is, then exit"). The time
counts from the broker's first answer to a fetch, so a slow start does not
cut a read short; if no fetch is answered within 30 s (or --timeout, if
longer) the command fails.

A stream that was split or merged (braid stream split, merge, scale) has
closed shards whose children continue their keys. Without --partition the
command follows this lineage, read from Braid's HTTP address (--admin-addr,
$BRAID_ADMIN_ADDR): it reads a child only after reading all its parents to
their end, so every key's records print in the order they were written,
and it picks up reshards made while it runs. --from applies to the shards
read at the start; a child reached later is read from its start. If nothing
listens at --admin-addr (a broker other than braid) every shard is read at
once, as a Kafka consumer would.

In text format each record's value is printed on its own line; with
--key-separator the key is printed first, followed by the separator. In json
format each record is one JSON object per line with partition, offset,
timestamp, key, value and headers; a key, value or header that is not valid
UTF-8 is base64-encoded and marked with a matching "_encoding" field.

Examples:
  braid consume orders
  braid consume orders --from latest
  braid consume orders --partition 2 --from 1500 --count 10
  braid consume orders --timeout 2s --format json | jq .value
  braid consume events --key-separator ': '`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.stream = args[0]
			return runConsume(cmd.Context(), f, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd, false)
	f.addAdminFlag(cmd, false, "Braid's HTTP address (host:port), for shard lineage; empty reads every shard at once")
	fl := cmd.Flags()
	fl.StringVar(&o.from, "from", "earliest", "where to start in each shard: earliest, latest or an offset")
	fl.Int32Var(&o.partition, "partition", -1, "consume only this shard (-1 = all shards)")
	fl.Int64Var(&o.count, "count", 0, "stop after this many records (0 = no limit)")
	fl.DurationVar(&o.timeout, "timeout", 0, "stop once no record arrived for this long (0 = wait forever)")
	fl.StringVar(&o.keySep, "key-separator", "", "text format: print key, this separator, then value")
	return cmd
}

// startOffset is the parsed --from flag; exact >= 0 means a numeric offset.
type startOffset struct {
	offset kgo.Offset
	exact  int64
	latest bool
}

func parseFrom(s string) (startOffset, error) {
	switch s {
	case "earliest", "start", "oldest":
		return startOffset{offset: kgo.NewOffset().AtStart(), exact: -1}, nil
	case "latest", "end", "newest":
		return startOffset{offset: kgo.NewOffset().AtEnd(), exact: -1, latest: true}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return startOffset{}, fmt.Errorf("--from %q: want earliest, latest or a non-negative offset", s)
	}
	return startOffset{offset: kgo.NewOffset().At(n), exact: n}, nil
}

func runConsume(ctx context.Context, f *clientFlags, o *consumeOptions, stdout, stderr io.Writer) error {
	if o.count < 0 {
		return fmt.Errorf("--count must not be negative, got %d", o.count)
	}
	from, err := parseFrom(o.from)
	if err != nil {
		return err
	}
	assign, err := consumeAssignment(ctx, f, o.stream, o.partition, from)
	if err != nil {
		return err
	}
	var gate *lineageGate
	extra := []kgo.Opt{}
	var fetchWait time.Duration // 0: kgo's default
	if o.timeout > 0 {
		fetchWait = idleFetchWait(o.timeout)
	}
	if o.partition < 0 {
		gate, err = lineageFor(ctx, f, o.stream)
		if err != nil {
			fmt.Fprintf(stderr, "warning: cannot read the lineage of stream %q (%v); reading every shard at once, so records of a key may print out of order across a split or merge\n", o.stream, err)
		}
		if gate != nil {
			assign, _ = gate.settle(true, from)
			// Control records move a shard's position too: a closed
			// shard that ends in a transaction marker must be seen to
			// end before its children are read. Children are added
			// with AddConsumePartitions, which waits for a metadata
			// refresh and for the fetch in flight to the broker (a
			// long poll): keep both waits short.
			extra = append(extra, kgo.KeepControlRecords(), kgo.MetadataMinAge(100*time.Millisecond))
			fetchWait = min(250*time.Millisecond, idleFetchWait(o.timeout))
		}
	}
	if fetchWait > 0 {
		extra = append(extra, kgo.FetchMaxWait(fetchWait))
	}
	answered := &fetchAnswered{}
	extra = append(extra, kgo.WithHooks(answered))
	cl, err := f.newClient(append(extra, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.stream: assign}))...)
	if err != nil {
		return err
	}
	defer cl.Close()

	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	enc := json.NewEncoder(out)
	lastErr := map[int32]string{}
	lastRefreshErr := ""

	var printed int64
	began := time.Now()
	lastActivity, refreshed := began, began
	for o.count == 0 || printed < o.count {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		var idleAt time.Time
		first := answered.first()
		if o.timeout > 0 {
			idleAt = idleDeadline(o.timeout, began, lastActivity, first)
		}
		wakeAt := idleAt
		if o.timeout > 0 && first.IsZero() {
			// Look again soon: the first answer moves idleAt.
			wakeAt = earlier(wakeAt, time.Now().Add(50*time.Millisecond))
		}
		if gate != nil && (wakeAt.IsZero() || refreshed.Add(lineageRefresh).Before(wakeAt)) {
			// Wake to look for reshards even while nothing arrives.
			wakeAt = refreshed.Add(lineageRefresh)
		}
		if !wakeAt.IsZero() {
			pollCtx, cancel = context.WithDeadline(ctx, wakeAt)
		}
		limit := 0
		if o.count > 0 {
			// Leave the rest buffered so exactly --count records print.
			limit = int(min(o.count-printed, 1<<20))
		}
		fs := cl.PollRecords(pollCtx, limit)
		cancel()
		pollDone := !idleAt.IsZero() && !time.Now().Before(idleAt)

		fs.EachError(func(_ string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			// kgo keeps retrying typed errors itself; repeating the same
			// message every poll would only bury the records.
			if msg := err.Error(); lastErr[p] != msg {
				lastErr[p] = msg
				fmt.Fprintf(stderr, "warning: shard %d: %v\n", p, err)
			}
		})
		var writeErr error
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			if writeErr != nil {
				return
			}
			if gate != nil {
				gate.advance(r.Partition, r.Offset)
			}
			if r.Attrs.IsControl() {
				return
			}
			n++
			if f.json() {
				writeErr = enc.Encode(jsonRecord(r))
			} else {
				writeErr = writeTextRecord(out, r, o.keySep)
			}
		})
		printed += int64(n)
		if writeErr == nil {
			writeErr = out.Flush()
		}
		if writeErr != nil {
			return fmt.Errorf("write record: %w", writeErr)
		}
		if n > 0 {
			lastActivity = time.Now()
		}
		if gate != nil {
			if time.Since(refreshed) >= lineageRefresh {
				refreshed = time.Now()
				if err := gate.refresh(ctx, f, o.stream); err != nil && ctx.Err() == nil {
					if msg := err.Error(); lastRefreshErr != msg {
						lastRefreshErr = msg
						fmt.Fprintf(stderr, "warning: refresh the lineage of stream %q: %v\n", o.stream, err)
					}
				}
			}
			add, drop := gate.settle(false, from)
			if len(drop) > 0 {
				cl.RemoveConsumePartitions(map[string][]int32{o.stream: drop})
			}
			if len(add) > 0 {
				cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{o.stream: add})
				lastActivity = time.Now() // --timeout counts from here: the children may hold records
			}
		}
		switch {
		case ctx.Err() != nil:
			// Ctrl-C is the normal way to end an open-ended consume.
			return nil
		case pollDone && n == 0 && first.IsZero() && printed == 0:
			return fmt.Errorf("no fetch of stream %q was answered within %s; is the broker overloaded?", o.stream, max(o.timeout, firstFetchWait))
		case pollDone && n == 0:
			return nil // idle for --timeout
		}
	}
	return nil
}

// firstFetchWait is how long consume --timeout waits for the broker to
// answer a first fetch (or --timeout, if longer) before it gives up.
const firstFetchWait = 30 * time.Second

// fetchAnswered is a kgo hook that notes when the broker first answered a
// fetch.
type fetchAnswered struct{ at atomic.Int64 } // Unix nanoseconds; 0 = none yet

func (h *fetchAnswered) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Fetch.Int16() && err == nil && h.at.Load() == 0 {
		h.at.CompareAndSwap(0, time.Now().UnixNano())
	}
}

func (h *fetchAnswered) first() time.Time {
	if ns := h.at.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// idleDeadline is when consume --timeout gives up waiting for records:
// timeout after the last record, counted from no earlier than the first
// fetch the broker answered, so that a slow start (connecting, a loaded
// machine) does not end a read before it asked. Until a fetch is answered
// (first is zero) it is firstFetchWait after the start, or timeout if
// longer.
func idleDeadline(timeout time.Duration, began, last, first time.Time) time.Time {
	if first.IsZero() {
		return began.Add(max(timeout, firstFetchWait))
	}
	if first.After(last) {
		last = first
	}
	return last.Add(timeout)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// idleFetchWait is the longest a fetch may wait at the broker for data
// under --timeout (0: none). kgo makes the shards it was given usable one
// by one and may send a fetch of only the first ones; a shard that became
// usable after joins the next fetch, once the broker answers this one. With
// kgo's default wait (5 s) that answer could come after --timeout, and a
// shard holding records printed nothing (seen in CI, and once in a loop
// of 150 runs at --timeout 1s on a development machine). A quarter of the
// timeout leaves room for several fetches before the consume gives up.
func idleFetchWait(timeout time.Duration) time.Duration {
	const most = 5 * time.Second // kgo's default
	if timeout <= 0 {
		return most
	}
	return min(max(timeout/4, 50*time.Millisecond), most)
}

// consumeAssignment looks the stream up once so that a missing stream or
// shard is an immediate error rather than a consumer that waits forever.
func consumeAssignment(ctx context.Context, f *clientFlags, stream string, partition int32, from startOffset) (map[int32]kgo.Offset, error) {
	adm, err := f.newAdmin()
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ctx, cancel := adminContext(ctx)
	defer cancel()

	md, err := adm.Metadata(ctx, stream)
	if err != nil {
		return nil, requestError(fmt.Sprintf("look up stream %q", stream), f, err)
	}
	td, ok := md.Topics[stream]
	if !ok {
		return nil, fmt.Errorf("look up stream %q: broker response did not mention the stream", stream)
	}
	if td.Err != nil {
		return nil, streamError("consume from", stream, td.Err, "")
	}
	parts := td.Partitions.Numbers()
	if partition >= 0 {
		if _, ok := td.Partitions[partition]; !ok {
			return nil, fmt.Errorf("stream %q has %d shard%s; --partition %d does not exist",
				stream, len(parts), plural(int64(len(parts))), partition)
		}
		parts = []int32{partition}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("stream %q has no shards", stream)
	}

	assign := make(map[int32]kgo.Offset, len(parts))
	if from.exact < 0 {
		for _, p := range parts {
			assign[p] = from.offset
		}
		return assign, nil
	}
	// Clamp numeric offsets ourselves: kgo's out-of-range handling for a
	// partition that has consumed nothing resets to the log start, which
	// would replay the whole shard when the offset is past the end.
	start, err := adm.ListStartOffsets(ctx, stream)
	if err != nil && len(start) == 0 {
		return nil, requestError(fmt.Sprintf("list earliest offsets of %q", stream), f, err)
	}
	end, err := adm.ListEndOffsets(ctx, stream)
	if err != nil && len(end) == 0 {
		return nil, requestError(fmt.Sprintf("list latest offsets of %q", stream), f, err)
	}
	for _, p := range parts {
		at := from.exact
		if s, ok := start.Lookup(stream, p); ok && s.Err == nil && at < s.Offset {
			at = s.Offset
		}
		if e, ok := end.Lookup(stream, p); ok && e.Err == nil && at > e.Offset {
			at = e.Offset
		}
		assign[p] = kgo.NewOffset().At(at)
	}
	return assign, nil
}

func writeTextRecord(w *bufio.Writer, r *kgo.Record, keySep string) error {
	if keySep != "" {
		w.Write(r.Key)
		w.WriteString(keySep)
	}
	w.Write(r.Value)
	return w.WriteByte('\n')
}

type jsonHeader struct {
	Key           string  `json:"key"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"value_encoding,omitempty"`
}

type jsonRec struct {
	Partition     int32        `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     string       `json:"timestamp"`
	Key           *string      `json:"key"`
	KeyEncoding   string       `json:"key_encoding,omitempty"`
	Value         *string      `json:"value"`
	ValueEncoding string       `json:"value_encoding,omitempty"`
	Headers       []jsonHeader `json:"headers"`
}

func jsonRecord(r *kgo.Record) jsonRec {
	j := jsonRec{
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: r.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Headers:   make([]jsonHeader, 0, len(r.Headers)),
	}
	j.Key, j.KeyEncoding = encodeBytes(r.Key)
	j.Value, j.ValueEncoding = encodeBytes(r.Value)
	for _, h := range r.Headers {
		v, e := encodeBytes(h.Value)
		j.Headers = append(j.Headers, jsonHeader{Key: h.Key, Value: v, ValueEncoding: e})
	}
	return j
}

// encodeBytes keeps text readable and binary lossless: encoding/json would
// silently replace invalid UTF-8 with U+FFFD. A nil slice (no key, or a
// tombstone value) becomes JSON null.
func encodeBytes(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, "base64"
}
