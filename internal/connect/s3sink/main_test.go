package s3sink

import (
	"testing"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestMain removes the braid binary the tests built when they end.
func TestMain(m *testing.M) { braidtest.Main(m) }
