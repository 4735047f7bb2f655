package wal

import (
	"bytes"
	"context"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRCJoin: the CRC-32C of a concatenation derived from its parts' is
// the one computed over its bytes, for empty parts, short ones and ones
// of a batch's sizes.
func TestCRCJoin(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 17<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lens := []int{0, 1, 2, 3, 7, 8, 21, 64, 255, 256, 1000, 4096, 16 << 10, 1<<20 + 3, 3 << 20, 16<<20 + 77}
	for _, la := range []int{0, 1, 9, 33, 4096} {
		for _, lb := range lens {
			if la+lb > len(buf) {
				continue
			}
			a, b := buf[:la], buf[la:la+lb]
			want := crc32.Checksum(buf[:la+lb], castagnoli)
			if got := crcJoin(crc32.Checksum(a, castagnoli), crc32.Checksum(b, castagnoli), lb); got != want {
				t.Fatalf("join of %d and %d bytes: %08x, want %08x", la, lb, got, want)
			}
		}
	}
	for range 200 {
		la, lb := rng.IntN(300), rng.IntN(70000)
		a, b := buf[:la], buf[la:la+lb]
		want := crc32.Checksum(buf[:la+lb], castagnoli)
		if got := crcJoin(crc32.Checksum(a, castagnoli), crc32.Checksum(b, castagnoli), lb); got != want {
			t.Fatalf("join of %d and %d bytes: %08x, want %08x", la, lb, got, want)
		}
	}
}

func BenchmarkCRCJoin(b *testing.B) {
	data := make([]byte, 16<<10)
	sum := crc32.Checksum(data, castagnoli)
	b.Run("join", func(b *testing.B) {
		for b.Loop() {
			sum = crcJoin(sum, 0x1234, len(data)+217)
		}
	})
	b.Run("checksum-16KiB", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			sum = crc32.Update(sum, castagnoli, data)
		}
	})
}

// TestAppendSummed: frames whose checksum is derived from a sum the caller
// holds replay like frames checksummed over their bytes, whatever part of
// the body the sum covers; a frame appended with a wrong sum is not
// replayed (the sum is what the checksum is made of).
func TestAppendSummed(t *testing.T) {
	dir := t.TempDir()
	w, _ := replayAll(t, dir, 0, Options{})
	head := []byte("prefix-12b..")
	var want []frame
	for i, from := range []int{0, 1, 21, 600, 999, 1000} {
		body := bytes.Repeat([]byte{byte('a' + i)}, 1000)
		body[from/2] ^= 0x5a
		start, _, err := w.AppendSummed(Kind(1), head, body, from, crc32.Checksum(body[from:], castagnoli))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, frame{start, Kind(1), append(bytes.Clone(head), body...)})
		start, _, err = w.Append(Kind(2), body)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, frame{start, Kind(2), body})
	}
	if _, _, err := w.AppendSummed(Kind(1), head, []byte("x"), 2, 0); err == nil {
		t.Fatal("a sum starting past the body was taken")
	}
	_, end, err := w.AppendSummed(Kind(1), head, []byte("bad sum"), 0, 12345)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDurable(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	w.Close()

	w, got := replayAll(t, dir, 0, Options{})
	defer w.Close()
	if len(got) != len(want) {
		t.Fatalf("replayed %d frames, want the %d appended with a right sum", len(got), len(want))
	}
	for i := range want {
		if got[i].pos != want[i].pos || got[i].kind != want[i].kind || !bytes.Equal(got[i].body, want[i].body) {
			t.Fatalf("frame %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
