package kinesis

import "testing"

func TestSplitConsumerARN(t *testing.T) {
	for _, tc := range []struct {
		arn, stream, name string
		epoch             int64
		ok                bool
	}{
		{"arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1700000000", "arn:aws:kinesis:us-east-1:000000000000:stream/s", "c", 1700000000, true},
		{"arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/a.b-c_d:7", "arn:aws:kinesis:us-east-1:000000000000:stream/s", "a.b-c_d", 7, true},
		{"arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c", "", "", 0, false},
		{"arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:x", "", "", 0, false},
		{"arn:aws:kinesis:us-east-1:000000000000:stream/s", "", "", 0, false},
	} {
		stream, name, epoch, err := splitConsumerARN(tc.arn)
		if (err == nil) != tc.ok || stream != tc.stream || name != tc.name || epoch != tc.epoch {
			t.Errorf("%s: %q %q %d %v", tc.arn, stream, name, epoch, err)
		}
	}
}
