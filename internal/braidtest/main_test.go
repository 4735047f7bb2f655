package braidtest

import "testing"

// TestMain removes the braid binary the tests built when they end.
func TestMain(m *testing.M) { Main(m) }
