package e2e

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/braidstream/braid/internal/braidtest"
)

const kStreamARN = "arn:aws:kinesis:us-east-1:000000000000:stream/"

func kRegister(t *testing.T, kc *kinesis.Client, stream, name string) *types.Consumer {
	t.Helper()
	out, err := kc.RegisterStreamConsumer(testCtx(t, 10*time.Second), &kinesis.RegisterStreamConsumerInput{
		StreamARN: aws.String(kStreamARN + stream), ConsumerName: aws.String(name)})
	if err != nil {
		t.Fatalf("RegisterStreamConsumer %s: %v", name, err)
	}
	return out.Consumer
}

// kConsumers lists a stream's consumer names, max at a time.
func kConsumers(t *testing.T, kc *kinesis.Client, stream string, max int32) []string {
	t.Helper()
	var names []string
	var next *string
	for range 50 {
		out, err := kc.ListStreamConsumers(testCtx(t, 10*time.Second), &kinesis.ListStreamConsumersInput{
			StreamARN: aws.String(kStreamARN + stream), MaxResults: aws.Int32(max), NextToken: next})
		if err != nil {
			t.Fatalf("ListStreamConsumers: %v", err)
		}
		if len(out.Consumers) > int(max) {
			t.Fatalf("%d consumers listed, MaxResults %d", len(out.Consumers), max)
		}
		for _, c := range out.Consumers {
			names = append(names, *c.ConsumerName)
		}
		if out.NextToken == nil {
			return names
		}
		next = out.NextToken
	}
	t.Fatal("ListStreamConsumers did not end")
	return nil
}

// TestKinesisStreamConsumers registers, lists, describes and
// deregisters consumers, with their errors, and finds them again after a
// restart.
func TestKinesisStreamConsumers(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "cs", 1)
	keyStream(t, p, "other", 1)
	kc := p.Kinesis()
	ctx := testCtx(t, 60*time.Second)

	c := kRegister(t, kc, "cs", "app-1")
	arnRE := regexp.MustCompile(`^` + regexp.QuoteMeta(kStreamARN+"cs/consumer/app-1:") + `\d{10}$`)
	if !arnRE.MatchString(*c.ConsumerARN) || c.ConsumerStatus != types.ConsumerStatusActive || time.Since(*c.ConsumerCreationTimestamp) > time.Minute {
		t.Fatalf("registered %s %s %v", *c.ConsumerARN, c.ConsumerStatus, c.ConsumerCreationTimestamp)
	}
	for _, bad := range []struct {
		stream, name, want string
	}{
		{"cs", "app-1", "ResourceInUseException"},
		{"cs", "bad name", "ValidationException"},
		{"cs", "", "ValidationException"},
		{"missing", "app-2", "ResourceNotFoundException"},
	} {
		_, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(kStreamARN + bad.stream), ConsumerName: aws.String(bad.name)})
		if awsErrorCode(err) != bad.want {
			t.Fatalf("register %q on %s: %v, want %s", bad.name, bad.stream, err, bad.want)
		}
	}
	// The same name on another stream is another consumer.
	kRegister(t, kc, "other", "app-1")

	d, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c.ConsumerARN})
	if err != nil || *d.ConsumerDescription.ConsumerName != "app-1" || *d.ConsumerDescription.StreamARN != kStreamARN+"cs" ||
		!d.ConsumerDescription.ConsumerCreationTimestamp.Equal(*c.ConsumerCreationTimestamp) {
		t.Fatalf("describe by ARN: %+v %v", d, err)
	}
	d, err = kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(kStreamARN + "cs"), ConsumerName: aws.String("app-1")})
	if err != nil || *d.ConsumerDescription.ConsumerARN != *c.ConsumerARN {
		t.Fatalf("describe by name: %+v %v", d, err)
	}
	for _, in := range []*kinesis.DescribeStreamConsumerInput{
		{StreamARN: aws.String(kStreamARN + "cs"), ConsumerName: aws.String("nobody")},
		{ConsumerARN: aws.String(kStreamARN + "cs/consumer/app-1:12345")}, // an older registration
		{ConsumerARN: aws.String(kStreamARN + "gone/consumer/app-1:12345")},
	} {
		if _, err := kc.DescribeStreamConsumer(ctx, in); awsErrorCode(err) != "ResourceNotFoundException" {
			t.Fatalf("describe %+v: %v, want ResourceNotFoundException", in, err)
		}
	}
	if _, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerName: aws.String("app-1")}); awsErrorCode(err) != "InvalidArgumentException" {
		t.Fatalf("describe by name without stream: %v", err)
	}

	// Up to 20 per stream; listed in pages, by name.
	for i := 2; i <= 20; i++ {
		kRegister(t, kc, "cs", fmt.Sprintf("app-%d", i))
	}
	_, err = kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(kStreamARN + "cs"), ConsumerName: aws.String("app-21")})
	if awsErrorCode(err) != "LimitExceededException" {
		t.Fatalf("21st consumer: %v, want LimitExceededException", err)
	}
	if names := kConsumers(t, kc, "cs", 7); len(names) != 20 || names[0] != "app-1" || names[1] != "app-10" || names[19] != "app-9" {
		t.Fatalf("listed %v", names)
	}
	for _, in := range []*kinesis.ListStreamConsumersInput{
		{StreamARN: aws.String(kStreamARN + "cs"), MaxResults: aws.Int32(0)},
		{StreamARN: aws.String(kStreamARN + "cs"), NextToken: aws.String("forged")},
		{StreamARN: aws.String(kStreamARN + "missing")},
	} {
		if _, err := kc.ListStreamConsumers(ctx, in); err == nil {
			t.Fatalf("list %+v succeeded", in)
		}
	}

	// Deregister by ARN and by name; the 21st then fits.
	if _, err := kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: c.ConsumerARN}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(kStreamARN + "cs"), ConsumerName: aws.String("app-2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: c.ConsumerARN}); awsErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("deregister twice: %v", err)
	}
	if _, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c.ConsumerARN}); awsErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("describe deregistered: %v", err)
	}
	kRegister(t, kc, "cs", "app-21")
	if n := len(kConsumers(t, kc, "cs", 100)); n != 19 {
		t.Fatalf("%d consumers, want 19", n)
	}

	// Consumers are durable: the same ARNs after a SIGKILL and restart.
	c3, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(kStreamARN + "cs"), ConsumerName: aws.String("app-3")})
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	p.Restart()
	kc = p.Kinesis()
	if n := len(kConsumers(t, kc, "cs", 100)); n != 19 {
		t.Fatalf("%d consumers after restart, want 19", n)
	}
	if _, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c3.ConsumerDescription.ConsumerARN}); err != nil {
		t.Fatalf("consumer ARN after restart: %v", err)
	}
	if names := kConsumers(t, kc, "other", 100); len(names) != 1 {
		t.Fatalf("other stream's consumers: %v", names)
	}
}
