package client

import (
	"crypto/md5"
	"testing"
)

// The owner of a key is the open shard whose range start is the largest
// at or below MD5(key) read as a 128-bit big-endian number: the server's
// rule (internal/engine/route.go HashKeyOf, Owner).
func TestLayoutOwner(t *testing.T) {
	// Two shards split at 2^127, a third range starting at 2^127 + 2^64
	// to exercise the low half, as the server's SplitEvenly lays out.
	mk := func(s string) hashKey {
		k, err := parseHashKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	l := &layout{shards: 5,
		starts: []hashKey{mk("0"), mk("170141183460469231731687303715884105728"), mk("170141183460469231731687303715884105728")},
		ids:    []int32{3, 1, 4}}
	l.starts[2][7] = 1 // 2^127 + 2^64
	for _, key := range []string{"a", "b", "user-7", "key-0", "key-1", "", "\x00\xff"} {
		sum := md5.Sum([]byte(key))
		want := int32(3)
		switch {
		case sum[0] >= 0x80 && (sum[1]|sum[2]|sum[3]|sum[4]|sum[5]|sum[6]) == 0 && sum[7] == 0:
			want = 1
		case sum[0] >= 0x80:
			want = 4
		}
		if got := l.owner(keyHash([]byte(key))); got != want {
			t.Errorf("owner(%q) (md5 %x) = %d, want %d", key, sum, got, want)
		}
	}
	if got := l.owner(mk("170141183460469231731687303715884105727")); got != 3 {
		t.Errorf("owner(2^127-1) = %d, want 3", got)
	}
	if got := l.owner(mk("170141183460469231731687303715884105728")); got != 1 {
		t.Errorf("owner(2^127) = %d, want 1", got)
	}
	if got := l.owner(mk("340282366920938463463374607431768211455")); got != 4 {
		t.Errorf("owner(2^128-1) = %d, want 4", got)
	}
	for _, bad := range []string{"-1", "340282366920938463463374607431768211456", "x"} {
		if _, err := parseHashKey(bad); err == nil {
			t.Errorf("parseHashKey(%q) accepted", bad)
		}
	}
}
