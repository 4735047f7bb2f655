package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// How kgo's errors map to the SDK's: the cases the end-to-end tests cannot
// reach on demand (RecordListTooLarge, a bare kgo.ErrRecordTimeout, a
// cancelled record failed with its last attempt's error).
func TestProduceErrClassifies(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	dial := fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		err   error
		wants []error
	}{
		{"closed", live, kgo.ErrClientClosed, []error{ErrClosed, kgo.ErrClientClosed}},
		{"record timeout", live, kgo.ErrRecordTimeout, []error{ErrDeliveryTimeout, kgo.ErrRecordTimeout}},
		{"message too large", live, kerr.MessageTooLarge, []error{ErrRecordTooLarge, kerr.MessageTooLarge}},
		{"record list too large", live, kerr.RecordListTooLarge, []error{ErrRecordTooLarge, kerr.RecordListTooLarge}},
		{"unknown stream", live, kerr.UnknownTopicOrPartition, []error{ErrUnknownStream}},
		{"timed out on a dial error", live, dial, []error{ErrDeliveryTimeout, syscall.ECONNREFUSED}},
		{"timed out on a retriable kerr", live, kerr.NotLeaderForPartition, []error{ErrDeliveryTimeout, kerr.NotLeaderForPartition}},
		{"cancelled", live, context.Canceled, []error{context.Canceled}},
		{"cancelled record failed with a dial error", done, dial, []error{context.Canceled, syscall.ECONNREFUSED}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := produceErr(tc.ctx, "s", tc.err)
			var pe *ProduceError
			if !errors.As(err, &pe) || pe.Stream != "s" {
				t.Fatalf("%v is not a *ProduceError for stream s", err)
			}
			for _, want := range tc.wants {
				if !errors.Is(err, want) {
					t.Errorf("%v does not match %v", err, want)
				}
			}
		})
	}
	if err := produceErr(live, "s", kerr.InvalidRecord); errors.Is(err, ErrDeliveryTimeout) {
		t.Errorf("a non-retriable error was called a delivery timeout: %v", err)
	}
	if produceErr(live, "s", nil) != nil {
		t.Error("nil error classified as an error")
	}
}
