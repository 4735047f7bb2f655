package s3sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/braidstream/braid/internal/connect"
)

// Type is the s3-sink connector type.
var Type = connect.Type{
	Name:        "s3-sink",
	ExactlyOnce: true,
	Doc:         "writes streams to S3 or an S3-compatible store as JSON lines or Parquet objects, exactly once",
	NewSink: func(env connect.Env, raw json.RawMessage) (connect.Sink, error) {
		return New(env, raw)
	},
}

// Object metadata (x-amz-meta-*) a data object carries: the offsets it
// holds, read back by a replay that finds the object already written.
const (
	metaFirstOffset = "braid-first-offset"
	metaLastOffset  = "braid-last-offset"
	metaRecords     = "braid-records"
)

// ErrBucket is a bucket that does not exist or cannot be reached with
// the credentials given; Open returns it wrapped.
var ErrBucket = errors.New("s3-sink: bucket not usable")

// Sink is an s3-sink: one object builder per shard.
type Sink struct {
	env    connect.Env
	cfg    Config
	prefix prefix
	codec  codec
	client *s3.Client
	now    func() time.Time
	shards map[connect.ShardKey]*shard
}

// shard is one shard's progress and its object being built.
type shard struct {
	key connect.ShardKey
	// next is the offset after the last record durable in the bucket
	// (the state object's), or -1 before the first object.
	next int64
	// adopt: the next object to open may already be in the bucket, written
	// by a sink that stopped before its state object (see doc.go).
	adopt bool
	obj   *object
}

// object is a data object being built.
type object struct {
	dir         string // the rendered prefix
	key         string
	first, last int64
	opened      time.Time
	rows        []any
	size        int64 // values' bytes, uncompressed: the max_bytes measure
}

// state is the JSON of a shard's state object.
type state struct {
	NextOffset int64  `json:"next_offset"`
	LastKey    string `json:"last_key"`
}

// New builds a sink from its config; it does not reach S3 until Open.
func New(env connect.Env, raw json.RawMessage) (*Sink, error) {
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	if env.Name == "" {
		return nil, errors.New("s3-sink: the connector needs a name (its state objects are kept under it)")
	}
	p, _ := parsePrefix(cfg.Prefix)
	return &Sink{env: env, cfg: cfg, prefix: p, codec: newCodec(cfg), now: time.Now,
		shards: map[connect.ShardKey]*shard{}}, nil
}

func (s *Sink) newClient(ctx context.Context) (*s3.Client, error) {
	var awsCfg aws.Config
	if s.cfg.AccessKey != "" {
		awsCfg = aws.Config{Region: s.cfg.Region,
			Credentials: credentials.NewStaticCredentialsProvider(s.cfg.AccessKey, s.cfg.SecretKey, "")}
	} else {
		var err error
		if awsCfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(s.cfg.Region)); err != nil {
			return nil, fmt.Errorf("s3-sink: AWS default configuration: %w", err)
		}
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if s.cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.cfg.Endpoint)
		}
		o.UsePathStyle = s.cfg.PathStyle
		// Transient errors (connection refused or reset, 5xx, throttling)
		// are retried here, with backoff; what still fails goes back to
		// the runtime, which reopens the sink. No retry quota: a sink
		// retries as long as its requests allow.
		o.Retryer = retry.NewStandard(func(r *retry.StandardOptions) {
			r.MaxAttempts = 8
			r.BaseDelay = 200 * time.Millisecond
			r.MaxBackoff = 5 * time.Second
			r.RateLimiter = ratelimit.None
		})
		// Checksums only where S3 requires them: S3-compatible stores do
		// not all know the newer CRC headers.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// Open checks the bucket and reads each shard's state object: the offset
// after the last object written is where the runtime resumes.
func (s *Sink) Open(ctx context.Context, shards []connect.ShardKey) (map[connect.ShardKey]int64, error) {
	client, err := s.newClient(ctx)
	if err != nil {
		return nil, err
	}
	s.client = client
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.cfg.Bucket}); err != nil {
		return nil, s.bucketError(err)
	}
	next := map[connect.ShardKey]int64{}
	for _, k := range shards {
		sh, err := s.loadShard(ctx, k)
		if err != nil {
			return nil, err
		}
		if sh.next >= 0 {
			next[k] = sh.next
		}
	}
	return next, nil
}

func (s *Sink) bucketError(err error) error {
	where := s.cfg.Endpoint
	if where == "" {
		where = "AWS " + s.cfg.Region
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NotFound", "NoSuchBucket":
			return fmt.Errorf("%w: bucket %q does not exist at %s", ErrBucket, s.cfg.Bucket, where)
		case "Forbidden", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return fmt.Errorf("%w: access to bucket %q at %s refused (%s): check access_key and secret_key, and that they may read and write the bucket",
				ErrBucket, s.cfg.Bucket, where, apiErr.ErrorCode())
		}
	}
	return fmt.Errorf("%w: bucket %q at %s: %v", ErrBucket, s.cfg.Bucket, where, err)
}

// stateKey is where a shard's state object lives.
func (s *Sink) stateKey(k connect.ShardKey) string {
	return fmt.Sprintf("%s_braid/%s/%s/%d", s.prefix.root, s.env.Name, k.Stream, k.Shard)
}

func (s *Sink) loadShard(ctx context.Context, k connect.ShardKey) (*shard, error) {
	sh := &shard{key: k, next: -1, adopt: true}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: aws.String(s.stateKey(k))})
	if err != nil {
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchKey" {
			return nil, fmt.Errorf("s3-sink: read state of %s: %w", k, err)
		}
	} else {
		body, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("s3-sink: read state of %s: %w", k, err)
		}
		var st state
		if err := json.Unmarshal(body, &st); err != nil || st.NextOffset < 0 {
			return nil, fmt.Errorf("s3-sink: state object %s is not a state (%v): remove it to start the shard over", s.stateKey(k), err)
		}
		sh.next = st.NextOffset
	}
	s.shards[k] = sh
	return sh, nil
}

// Put adds records to their shards' objects and writes each object that
// rolls, then its shard's state object.
func (s *Sink) Put(ctx context.Context, recs []connect.Record) error {
	for i, r := range recs {
		k := connect.ShardKey{Stream: r.Stream, Shard: r.Shard}
		sh := s.shards[k]
		if sh == nil {
			var err error
			if sh, err = s.loadShard(ctx, k); err != nil {
				return err
			}
		}
		if r.Offset < sh.next {
			continue // in an object already: a replay from before the state
		}
		row, err := s.codec.check(r.Value)
		if err != nil {
			return &connect.BadRecordError{Index: i, Err: err}
		}
		dir := s.prefix.render(r.Stream, r.Shard, r.Timestamp)
		if sh.obj != nil && sh.obj.dir != dir {
			if err := s.roll(ctx, sh); err != nil {
				return err
			}
		}
		if sh.obj == nil {
			key := dir + fmt.Sprintf("%s-%d-%020d", r.Stream, r.Shard, r.Offset) + s.codec.ext()
			if sh.adopt {
				sh.adopt = false
				adopted, err := s.adopt(ctx, sh, key, r.Offset)
				if err != nil {
					return err
				}
				if adopted {
					continue
				}
			}
			sh.obj = &object{dir: dir, key: key, first: r.Offset, opened: s.now()}
		}
		o := sh.obj
		o.rows = append(o.rows, row)
		o.last = r.Offset
		o.size += int64(len(r.Value)) + 1
		if o.size >= s.cfg.MaxBytes || (s.cfg.MaxRecords > 0 && int64(len(o.rows)) >= s.cfg.MaxRecords) {
			if err := s.roll(ctx, sh); err != nil {
				return err
			}
		}
	}
	if age := s.cfg.MaxAge.Duration; age > 0 {
		for _, sh := range s.sorted() {
			if sh.obj != nil && s.now().Sub(sh.obj.opened) >= age {
				if err := s.roll(ctx, sh); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// adopt looks for the object a previous sink wrote at key but had no
// state for: if it is there, holding offsets first..L, those records are
// delivered already; the state is written for it and the records up to L
// are skipped, so the object is neither written twice nor cut elsewhere.
func (s *Sink) adopt(ctx context.Context, sh *shard, key string, first int64) (bool, error) {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NotFound" || apiErr.ErrorCode() == "NoSuchKey") {
			return false, nil
		}
		return false, fmt.Errorf("s3-sink: look for %s: %w", key, err)
	}
	firstMeta, err1 := strconv.ParseInt(head.Metadata[metaFirstOffset], 10, 64)
	last, err2 := strconv.ParseInt(head.Metadata[metaLastOffset], 10, 64)
	if err1 != nil || err2 != nil || firstMeta != first || last < first {
		return false, fmt.Errorf("s3-sink: object %s is in the way: it lacks this sink's %s/%s metadata for offset %d",
			key, metaFirstOffset, metaLastOffset, first)
	}
	if err := s.writeState(ctx, sh, last+1, key); err != nil {
		return false, err
	}
	s.env.Logger.Info("s3-sink: adopted an object written before a restart", "key", key, "first", first, "last", last)
	return true, nil
}

// roll writes the shard's object, then its state object.
func (s *Sink) roll(ctx context.Context, sh *shard) error {
	o := sh.obj
	body, err := s.codec.encode(o.rows)
	if err != nil {
		return fmt.Errorf("s3-sink: encode %s: %w", o.key, err)
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.cfg.Bucket,
		Key:           &o.key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(s.codec.contentType()),
		Metadata: map[string]string{
			metaFirstOffset: strconv.FormatInt(o.first, 10),
			metaLastOffset:  strconv.FormatInt(o.last, 10),
			metaRecords:     strconv.Itoa(len(o.rows)),
		},
	})
	if err != nil {
		return fmt.Errorf("s3-sink: write %s: %w", o.key, err)
	}
	if err := s.writeState(ctx, sh, o.last+1, o.key); err != nil {
		return err
	}
	sh.obj = nil
	return nil
}

func (s *Sink) writeState(ctx context.Context, sh *shard, next int64, lastKey string) error {
	body, _ := json.Marshal(state{NextOffset: next, LastKey: lastKey})
	key := s.stateKey(sh.key)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.cfg.Bucket,
		Key:           &key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	})
	if err != nil {
		return fmt.Errorf("s3-sink: write state %s: %w", key, err)
	}
	sh.next = next
	return nil
}

// sorted is the shards in a fixed order, so rolls happen in the same order
// on every run.
func (s *Sink) sorted() []*shard {
	out := make([]*shard, 0, len(s.shards))
	for _, sh := range s.shards {
		out = append(out, sh)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].key, out[j].key
		return a.Stream < b.Stream || (a.Stream == b.Stream && a.Shard < b.Shard)
	})
	return out
}

// Flush writes every shard's object being built.
func (s *Sink) Flush(ctx context.Context) error {
	for _, sh := range s.sorted() {
		if sh.obj != nil {
			if err := s.roll(ctx, sh); err != nil {
				return err
			}
		}
	}
	return nil
}

// Durable is, per shard, the next offset of its last state object.
func (s *Sink) Durable() map[connect.ShardKey]int64 {
	out := make(map[connect.ShardKey]int64, len(s.shards))
	for k, sh := range s.shards {
		if sh.next >= 0 {
			out[k] = sh.next
		}
	}
	return out
}

// Close drops the objects being built: their records are read again.
func (s *Sink) Close() error {
	for _, sh := range s.shards {
		sh.obj = nil
	}
	return nil
}
