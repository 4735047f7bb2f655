package crashtest

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// killCount returns how many times a crash test kills the server: def, or
// the value of the environment variable env. A crash test that kills
// nothing checks nothing, so a count below 1 (or not a number) fails the
// test instead of letting it pass.
func killCount(t *testing.T, env string, def int) int {
	t.Helper()
	n, err := parseKillCount(os.Getenv(env), def)
	if err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return n
}

func parseKillCount(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("kill count %q: want a whole number of at least 1", s)
	}
	return n, nil
}

func TestParseKillCount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // 0: refused
	}{
		{"", 7}, {"1", 1}, {"30", 30},
		{"0", 0}, {"-2", 0}, {"ten", 0}, {"3x", 0}, {" 3", 0},
	} {
		n, err := parseKillCount(tc.in, 7)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("%q: accepted as %d kills", tc.in, n)
			}
			continue
		}
		if err != nil || n != tc.want {
			t.Errorf("%q: %d, %v; want %d", tc.in, n, err, tc.want)
		}
	}
}
