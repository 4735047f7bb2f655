package cli

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// stream create asks again without braid.routing only when a broker refused
// that very config.
func TestUnknownRoutingConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		msg  string
		want bool
	}{
		{"kafka refuses the name", kerr.InvalidConfig, "Unknown topic config name: braid.routing", true},
		{"another config is bad", kerr.InvalidConfig, "Invalid value forever for configuration retention.ms", false},
		{"another error", kerr.TopicAlreadyExists, "braid.routing", false},
		{"no error", nil, "", false},
		{"wrapped", errors.Join(errors.New("create"), kerr.InvalidConfig), "braid.routing", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unknownRoutingConfig(tc.err, tc.msg); got != tc.want {
				t.Errorf("unknownRoutingConfig(%v, %q) = %v, want %v", tc.err, tc.msg, got, tc.want)
			}
		})
	}
}
