package catalog

import (
	"fmt"
	"math/big"
	"math/bits"
)

// HashKey is a point in the 128-bit hash-key space (Kinesis' hash keys, the
// MD5 of a record's partition key, or an explicit value).
type HashKey struct{ Hi, Lo uint64 }

// MaxHashKey is the largest hash key, 2^128-1.
var MaxHashKey = HashKey{^uint64(0), ^uint64(0)}

func (k HashKey) big() *big.Int {
	b := new(big.Int).SetUint64(k.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(k.Lo))
}

// String renders the key in decimal, as Kinesis does.
func (k HashKey) String() string { return k.big().String() }

// Less reports whether k < o.
func (k HashKey) Less(o HashKey) bool { return k.Hi < o.Hi || (k.Hi == o.Hi && k.Lo < o.Lo) }

// MarshalText encodes the key in decimal.
func (k HashKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a decimal key.
func (k *HashKey) UnmarshalText(b []byte) error {
	v, err := ParseHashKey(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ParseHashKey parses a decimal hash key in [0, 2^128).
func ParseHashKey(s string) (HashKey, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 || v.BitLen() > 128 {
		return HashKey{}, fmt.Errorf("catalog: hash key %q is not a decimal number in [0, 2^128)", s)
	}
	return fromBig(v), nil
}

// HashRange is an inclusive range of hash keys.
type HashRange struct {
	Start HashKey `json:"start"`
	End   HashKey `json:"end"`
}

// Contains reports whether k lies in the range.
func (r HashRange) Contains(k HashKey) bool { return !k.Less(r.Start) && !r.End.Less(k) }

// SplitEvenly cuts the whole key space into n adjacent ranges of equal size
// (the last takes the remainder), as Kinesis does for a new stream.
func SplitEvenly(n int) []HashRange {
	out := make([]HashRange, n)
	w := new(big.Int).Lsh(big.NewInt(1), 128)
	w.Div(w, big.NewInt(int64(n)))
	width := fromBig(w)
	start := HashKey{}
	for i := range n {
		out[i].Start = start
		if i == n-1 {
			out[i].End = MaxHashKey
			break
		}
		end := add(start, width)
		out[i].End = sub1(end)
		start = end
	}
	return out
}

func fromBig(v *big.Int) HashKey {
	lo := new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0))).Uint64()
	return HashKey{Hi: new(big.Int).Rsh(v, 64).Uint64(), Lo: lo}
}

func add(a, b HashKey) HashKey {
	lo, c := bits.Add64(a.Lo, b.Lo, 0)
	hi, _ := bits.Add64(a.Hi, b.Hi, c)
	return HashKey{hi, lo}
}

func sub1(a HashKey) HashKey {
	lo, b := bits.Sub64(a.Lo, 1, 0)
	hi, _ := bits.Sub64(a.Hi, 0, b)
	return HashKey{hi, lo}
}
