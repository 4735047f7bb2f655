package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The Kinesis benchmark ("braid bench kinesis") drives any Kinesis Data
// Streams endpoint with the AWS SDK for Go v2, so that the same load
// measures Braid's Kinesis door and other implementations (kinesalite)
// side by side. It writes with PutRecords calls as fast as the callers
// can, or, with a rate, PutRecord calls at that fixed rate for latency;
// then reads everything back from TRIM_HORIZON on every shard with
// GetRecords. Data is counted in bytes of record data (partition keys are
// not counted); on the wire it travels base64-encoded in JSON.

// KinesisConfig describes one Kinesis benchmark run.
type KinesisConfig struct {
	Endpoint string // e.g. http://127.0.0.1:4567
	Region   string
	// AccessKeyID and SecretAccessKey, when set, sign every request with
	// SigV4 (SessionToken is optional); empty = unsigned requests.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	Stream string
	Shards int // used only when the stream is created

	Callers        int // concurrent clients, each one call at a time
	RecordsPerCall int // records per PutRecords call (1-500)
	RecordSize     int // bytes of data per record
	Duration       time.Duration
	// Rate, when positive, switches the write phase to single-record
	// PutRecord calls at this many records/s across all callers, and
	// records each call's latency.
	Rate float64
	Read bool // read everything back with GetRecords afterwards

	Keep     bool      // keep a stream the run created
	Progress io.Writer // once-a-second progress lines; nil = quiet
}

// KinesisResult is what a Kinesis run measured; phases that did not run
// are nil.
type KinesisResult struct {
	Endpoint      string          `json:"endpoint"`
	Stream        string          `json:"stream"`
	Shards        int             `json:"shards"` // open shards when the run began
	CreatedStream bool            `json:"created_stream"`
	DeletedStream bool            `json:"deleted_stream"`
	Settings      KinesisSettings `json:"settings"`
	// PutRecords' latency is per call (500 records by default).
	PutRecords *Phase `json:"put_records,omitempty"`
	// PutRecord (rate mode) has a latency per record and the schedule lag.
	PutRecord *Phase `json:"put_record,omitempty"`
	// GetRecords reads every shard from TRIM_HORIZON to its end.
	GetRecords  *Phase `json:"get_records,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// KinesisSettings echoes the configuration in the result.
type KinesisSettings struct {
	Callers        int     `json:"callers"`
	RecordsPerCall int     `json:"records_per_call"`
	RecordSize     int     `json:"record_size"`
	Duration       string  `json:"duration"`
	Rate           float64 `json:"rate,omitempty"`
	Signed         bool    `json:"signed"`
}

// ErrReadShort reports a read-back that found fewer records than were
// written: the endpoint lost records, or the reader missed some.
var ErrReadShort = errors.New("read back fewer records than were written")

const (
	// MaxRecordsPerCall is Kinesis' PutRecords limit.
	MaxRecordsPerCall = 500
	// activeTimeout bounds the wait for a new stream to become ACTIVE
	// (kinesalite keeps one CREATING for --createStreamMs).
	activeTimeout = 60 * time.Second
	// callTimeout bounds one API call, so a stuck endpoint fails the run
	// instead of hanging it.
	callTimeout = 60 * time.Second
)

func (cfg *KinesisConfig) validate() error {
	switch {
	case cfg.Endpoint == "":
		return errors.New("no endpoint")
	case cfg.Region == "":
		return errors.New("no region")
	case cfg.Stream == "":
		return errors.New("no stream name")
	case cfg.Shards < 1:
		return fmt.Errorf("shards must be at least 1, got %d", cfg.Shards)
	case cfg.Callers < 1:
		return fmt.Errorf("callers must be at least 1, got %d", cfg.Callers)
	case cfg.RecordsPerCall < 1 || cfg.RecordsPerCall > MaxRecordsPerCall:
		return fmt.Errorf("records per call must be 1 to %d, got %d", MaxRecordsPerCall, cfg.RecordsPerCall)
	case cfg.RecordSize < 1 || cfg.RecordSize > 1<<20:
		return fmt.Errorf("record size must be 1 to %d bytes, got %d", 1<<20, cfg.RecordSize)
	case cfg.Duration <= 0:
		return fmt.Errorf("duration must be positive, got %s", cfg.Duration)
	case cfg.Rate < 0:
		return fmt.Errorf("rate must not be negative, got %g", cfg.Rate)
	case (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == ""):
		return errors.New("set both an access key id and a secret access key, or neither")
	}
	return nil
}

// RunKinesis executes the Kinesis benchmark described by cfg.
func RunKinesis(ctx context.Context, cfg KinesisConfig) (res *KinesisResult, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kc := newKinesisClient(cfg)
	shards, created, err := ensureKinesisStream(ctx, kc, cfg.Stream, cfg.Shards)
	if err != nil {
		return nil, err
	}
	res = &KinesisResult{
		Endpoint: cfg.Endpoint, Stream: cfg.Stream, Shards: shards, CreatedStream: created,
		Settings: KinesisSettings{
			Callers: cfg.Callers, RecordsPerCall: cfg.RecordsPerCall, RecordSize: cfg.RecordSize,
			Duration: cfg.Duration.String(), Rate: cfg.Rate, Signed: cfg.AccessKeyID != "",
		},
	}
	if created && !cfg.Keep {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			_, derr := kc.DeleteStream(cctx, &kinesis.DeleteStreamInput{StreamName: &cfg.Stream})
			if derr != nil {
				err = errors.Join(err, fmt.Errorf("delete stream %q: %w", cfg.Stream, derr))
			} else {
				res.DeletedStream = true
			}
		}()
	}

	callers, err := newCallers(ctx, cfg)
	if err != nil {
		return res, err
	}
	pool := NewPool(PoolSize(cfg.RecordSize, cfg.RecordsPerCall*cfg.RecordSize, shards), randSeed())
	var written *Phase
	if cfg.Rate > 0 {
		res.PutRecord = putRecordPhase(ctx, cfg, callers, pool)
		written = res.PutRecord
	} else {
		res.PutRecords = putRecordsPhase(ctx, cfg, callers, pool)
		written = res.PutRecords
	}
	if ctx.Err() == nil && cfg.Read {
		res.GetRecords = getRecordsPhase(ctx, cfg, callers)
		if ctx.Err() == nil && res.GetRecords.Records < written.Records {
			return res, fmt.Errorf("%w: %d read, %d written", ErrReadShort, res.GetRecords.Records, written.Records)
		}
	}
	if ctx.Err() != nil {
		res.Interrupted = true
		return res, fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
	return res, nil
}

// newKinesisClient returns a client with connections of its own, as a
// separate producer process would have. The SDK does not retry: a failed
// call counts as failed.
//
// Its transport copies each request body first, as braidtest's Kinesis
// client does: with the SDK's default client over HTTP/1.1 an answer
// sometimes lost its connection because the SDK closes the request body
// as soon as RoundTrip returns. The copy (one memcpy of the encoded
// request) is small next to the JSON and base64 encoding.
func newKinesisClient(cfg KinesisConfig) *kinesis.Client {
	var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
	if cfg.AccessKeyID != "" {
		creds = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return kinesis.New(kinesis.Options{
		Region:           cfg.Region,
		BaseEndpoint:     aws.String(cfg.Endpoint),
		Credentials:      creds,
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: CopyBody{tr}, Timeout: callTimeout},
	})
}

// CopyBody is an http.RoundTripper that sends a copy of each request body,
// so that the caller closing its own body early cannot disturb the send
// (see newKinesisClient; braidtest's Kinesis client uses it too).
type CopyBody struct{ RT http.RoundTripper }

func (c CopyBody) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return c.RT.RoundTrip(r)
}

// ensureKinesisStream returns the stream's open shard count, creating the
// stream with shards shards (and waiting until it is ACTIVE) when it does
// not exist. created tells whether the run owns the stream.
func ensureKinesisStream(ctx context.Context, kc *kinesis.Client, stream string, shards int) (open int, created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, activeTimeout)
	defer cancel()
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &stream})
	var nf *types.ResourceNotFoundException
	switch {
	case err == nil:
	case errors.As(err, &nf):
		_, err = kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &stream, ShardCount: aws.Int32(int32(shards))})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return 0, false, fmt.Errorf("create stream %q with %d shards: %w", stream, shards, err)
		}
		// Losing a creation race to another run means someone else owns it.
		created = err == nil
		sum, err = waitActive(ctx, kc, stream)
	}
	if err != nil {
		return 0, created, fmt.Errorf("describe stream %q: %w", stream, err)
	}
	return int(aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount)), created, nil
}

// waitActive polls until the stream is ACTIVE or ctx ends.
func waitActive(ctx context.Context, kc *kinesis.Client, stream string) (*kinesis.DescribeStreamSummaryOutput, error) {
	for {
		sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &stream})
		if err == nil && sum.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return sum, nil
		}
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the stream to become ACTIVE: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newCallers creates one client per caller and makes one call through
// each (DescribeStreamSummary), so connection setup is not timed and an
// endpoint that refuses the callers fails the run before it starts. No
// record is written outside the timed phase, so the read-back counts
// exactly what the phase wrote (on a stream the run created).
func newCallers(ctx context.Context, cfg KinesisConfig) ([]*kinesis.Client, error) {
	out := make([]*kinesis.Client, cfg.Callers)
	errs := make([]error, cfg.Callers)
	done := make(chan struct{}, cfg.Callers)
	for i := range out {
		out[i] = newKinesisClient(cfg)
		go func() {
			defer func() { done <- struct{}{} }()
			wctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			_, errs[i] = out[i].DescribeStreamSummary(wctx, &kinesis.DescribeStreamSummaryInput{StreamName: &cfg.Stream})
		}()
	}
	for range out {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("warm-up call to %s: %w", cfg.Endpoint, err)
	}
	return out, nil
}
