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
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// TestSubscribeToShardHTTP2 serves the door over h2c only (prior
// knowledge, no HTTP/1.1) and reads a subscription with the AWS SDK: the
// events must arrive one by one, flushed as HTTP/2 DATA frames. (The
// braid serve listener's h2c setting is not this file's; the e2e tests
// cover HTTP/1.1 chunked.)
func TestSubscribeToShardHTTP2(t *testing.T) {
	eng, err := engine.Open(engine.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.CreateStream("h2", 1, catalog.Configs{catalog.RoutingConfig: "key"}, false); err != nil {
		t.Fatal(err)
	}
	door := NewServer(eng, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var only2 http.Protocols
	only2.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: door, Protocols: &only2}
	go srv.Serve(ln)
	defer srv.Close()

	var seenProto string
	client := &http.Client{Transport: protoSpy{&http.Transport{Protocols: &only2}, &seenProto}}
	kc := kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + ln.Addr().String()), HTTPClient: client, RetryMaxAttempts: 1,
		Credentials: credentials.StaticCredentialsProvider{Value: aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(door.arn("h2")), ConsumerName: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: reg.Consumer.ConsumerARN, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}})
	if err != nil {
		t.Fatal(err)
	}
	if seenProto != "HTTP/2.0" {
		t.Fatalf("answered over %s", seenProto)
	}
	es := out.GetStream()
	defer es.Close()
	<-es.Events() // the first (empty) event
	for i, data := range []string{"one", "two"} {
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("h2"), PartitionKey: aws.String("k"), Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
		select {
		case ev, ok := <-es.Events():
			if !ok {
				t.Fatalf("stream ended: %v", es.Err())
			}
			recs := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value.Records
			if len(recs) != 1 || string(recs[0].Data) != data {
				t.Fatalf("event %d: %d records", i, len(recs))
			}
		case <-ctx.Done():
			t.Fatalf("record %q not pushed", data)
		}
	}
}

// protoSpy records the protocol of the last answer.
type protoSpy struct {
	rt    http.RoundTripper
	proto *string
}

func (p protoSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.rt.RoundTrip(r)
	if err == nil {
		*p.proto = resp.Proto
	}
	return resp, err
}
