package kinesis

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/braidstream/braid/internal/engine"
)

// TestRequestsByProtocol calls the door as braid serve listens (Serve:
// HTTP/1.1 and h2c on one listener) over each protocol, and checks that
// braid_kinesis_requests_total counts each call under the protocol the
// server saw. The smoke test of the AWS SDK for JavaScript reads this
// counter to know its SubscribeToShard streams ran over HTTP/2.
func TestRequestsByProtocol(t *testing.T) {
	eng, err := engine.Open(engine.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	reg := prometheus.NewRegistry()
	door := NewServer(eng, Options{Metrics: NewMetrics(reg)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go door.Serve(ln)
	defer door.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name  string
		proto func(*http.Protocols)
		calls int
		want  string
	}{
		{name: "HTTP/1.1", proto: func(p *http.Protocols) { p.SetHTTP1(true) }, calls: 2, want: "HTTP/1.1"},
		{name: "h2c", proto: func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, calls: 3, want: "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var protos http.Protocols
			tc.proto(&protos)
			kc := kinesis.New(kinesis.Options{
				Region: "us-east-1", BaseEndpoint: aws.String("http://" + ln.Addr().String()), RetryMaxAttempts: 1,
				HTTPClient:  &http.Client{Transport: &http.Transport{Protocols: &protos}},
				Credentials: credentials.StaticCredentialsProvider{Value: aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}},
			})
			for range tc.calls {
				if _, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	got := requestCounts(t, reg)
	want := map[string]float64{"ListStreams HTTP/1.1": 2, "ListStreams HTTP/2.0": 3}
	if len(got) != len(want) || got["ListStreams HTTP/1.1"] != 2 || got["ListStreams HTTP/2.0"] != 3 {
		t.Fatalf("braid_kinesis_requests_total by operation and protocol: %v, want %v", got, want)
	}
}

// requestCounts gathers braid_kinesis_requests_total from reg, by
// "operation protocol".
func requestCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "braid_kinesis_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["operation"]+" "+labels["protocol"]] = m.GetCounter().GetValue()
		}
	}
	return out
}
