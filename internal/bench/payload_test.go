package bench

import (
	"bytes"
	"compress/flate"
	"testing"
)

func TestPoolSize(t *testing.T) {
	tests := []struct {
		name                             string
		recordSize, batchMax, partitions int
		want                             int
	}{
		{"small batches use the floor", 1024, 16 << 10, 1, minPoolBytes},
		{"default batch, one partition", 1024, 1 << 20, 1, minPoolBytes},
		{"scales with partitions", 1024, 1 << 20, 8, 32 << 20},
		{"capped", 1024, 1 << 20, 1000, maxPoolBytes},
		{"huge records still fit twice", 200 << 20, 1 << 30, 1, 400 << 20},
		{"zero partitions treated as one", 100, 1 << 20, 0, minPoolBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PoolSize(tt.recordSize, tt.batchMax, tt.partitions); got != tt.want {
				t.Errorf("PoolSize = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPayloads(t *testing.T) {
	tests := []struct {
		name       string
		poolSize   int
		size       int
		start      int
		draws      int
		wantStarts []int // offsets in the pool of successive values
	}{
		{"consecutive windows", 100, 10, 0, 3, []int{0, 10, 20}},
		{"start offset", 100, 10, 35, 2, []int{35, 45}},
		{"wraps without running off the end", 25, 10, 0, 4, []int{0, 10, 4, 14}},
		{"start beyond pool wraps", 100, 10, 95, 1, []int{4}},
		{"record equals pool", 10, 10, 3, 3, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := NewPool(tt.poolSize, 1)
			p := NewPayloads(pool, tt.size, tt.start)
			for i := range tt.draws {
				v := p.Next()
				if len(v) != tt.size || cap(v) != tt.size {
					t.Fatalf("value %d: len %d cap %d, want %d", i, len(v), cap(v), tt.size)
				}
				want := pool[tt.wantStarts[i] : tt.wantStarts[i]+tt.size]
				if !bytes.Equal(v, want) {
					t.Errorf("value %d is not the window at %d", i, tt.wantStarts[i])
				}
			}
		})
	}
}

func TestPayloadsIncompressible(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		{"tiny", 16},
		{"default", 1024},
		{"large", 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := NewPool(PoolSize(tt.size, 1<<20, 1), 7)
			p := NewPayloads(pool, tt.size, 0)
			var raw bytes.Buffer
			for raw.Len() < 1<<20 {
				raw.Write(p.Next())
			}
			var z bytes.Buffer
			w, _ := flate.NewWriter(&z, flate.BestCompression)
			w.Write(raw.Bytes())
			w.Close()
			if ratio := float64(z.Len()) / float64(raw.Len()); ratio < 0.99 {
				t.Errorf("a batch's worth of values compressed to %.3f of its size", ratio)
			}
		})
	}
}

func TestNewPoolSeeds(t *testing.T) {
	a, b, c := NewPool(64, 1), NewPool(64, 1), NewPool(64, 2)
	if !bytes.Equal(a, b) {
		t.Error("same seed gave different pools")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same pool")
	}
}

func TestStamp(t *testing.T) {
	tests := []struct {
		name   string
		value  []byte
		t      int64
		wantOK bool
	}{
		{"stamps a copy", bytes.Repeat([]byte{0xaa}, 16), 1_700_000_000_123_456_789, true},
		{"exactly stamp length", make([]byte, stampLen), 42, true},
		{"too short is left alone", []byte{1, 2, 3}, 42, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := bytes.Clone(tt.value)
			out := Stamp(tt.value, tt.t)
			if !bytes.Equal(tt.value, orig) {
				t.Fatal("Stamp modified its input, which aliases the shared pool")
			}
			if len(out) != len(tt.value) {
				t.Fatalf("len %d, want %d", len(out), len(tt.value))
			}
			got, ok := ReadStamp(out)
			if ok != tt.wantOK || (ok && got != tt.t) {
				t.Errorf("ReadStamp = %d, %v; want %d, %v", got, ok, tt.t, tt.wantOK)
			}
			if ok && !bytes.Equal(out[stampLen:], orig[stampLen:]) {
				t.Error("Stamp changed bytes past the stamp")
			}
		})
	}
}
