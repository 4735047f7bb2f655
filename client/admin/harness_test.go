package admin_test

// A real `braid serve` built from this checkout (internal/testnode, shared
// with package client's tests).

import (
	"testing"

	"github.com/braidstream/braid/client/internal/testnode"
)

// startServer runs braid serve and returns its Kafka and HTTP addresses;
// it is killed at test end.
func startServer(tb testing.TB) (kafkaAddr, httpAddr string) {
	tb.Helper()
	n := testnode.Start(tb)
	return n.KafkaAddr, n.HTTPAddr
}

func TestMain(m *testing.M) { testnode.Main(m) }
