package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/braidstream/braid/internal/braidtest"
)

// awsErrorCode returns the AWS error type of err ("" if it is none).
func awsErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestKinesisListStreams lists streams made through the Kafka door,
// paginated, through the AWS SDK.
func TestKinesisListStreams(t *testing.T) {
	p := braidtest.Start(t)
	adm := kadm.NewClient(p.Client())
	defer adm.Close()
	ctx := context.Background()
	for i := range 5 {
		if _, err := adm.CreateTopic(ctx, 1, -1, nil, fmt.Sprintf("ks-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	kc := p.Kinesis()
	var names []string
	var next *string
	for range 10 {
		out, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(2), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, out.StreamNames...)
		if len(out.StreamSummaries) != len(out.StreamNames) || (len(out.StreamSummaries) > 0 && *out.StreamSummaries[0].StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/"+out.StreamNames[0]) {
			t.Fatalf("summaries %+v", out.StreamSummaries)
		}
		if !*out.HasMoreStreams {
			break
		}
		next = out.NextToken
	}
	if fmt.Sprint(names) != "[ks-0 ks-1 ks-2 ks-3 ks-4]" {
		t.Fatalf("listed %v (the internal stream must not be listed)", names)
	}
	_, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(0)})
	if awsErrorCode(err) != "ValidationException" {
		t.Fatalf("Limit 0: %v, want ValidationException", err)
	}
	_, err = kc.ListStreams(ctx, &kinesis.ListStreamsInput{NextToken: aws.String("forged")})
	if awsErrorCode(err) != "InvalidArgumentException" {
		t.Fatalf("forged token: %v, want InvalidArgumentException", err)
	}
}
