package wal

// CRC-32C of a concatenation from the CRCs of its parts. A frame's checksum
// covers its position, kind and body; most of a batch frame's body is a
// record batch whose own CRC-32C the broker has just verified, so the
// frame's checksum can be derived from it instead of read from every byte
// again (6.6% of the node's CPU at 1,000 partitions).
//
// Arithmetic in GF(2)[x] modulo the Castagnoli polynomial, in the reflected
// bit order crc32 uses (the top bit is x^0). Appending n bytes of zeros
// to a message multiplies its register by x^(8n); the pre- and
// post-conditioning of CRC-32C cancel out, so for a message a followed by b
//
//	crc(a‖b) = crc(a)·x^(8·len(b)) + crc(b)   (mod P)

// castagnoliReversed is the Castagnoli polynomial, bit-reversed.
const castagnoliReversed = 0x82f63b78

// mulModP returns a·b mod P, without branches: a's bits choose the
// multiples of b to add, b·x^i is b shifted, reduced each step.
func mulModP(a, b uint32) uint32 {
	var p uint32
	for range 32 {
		p ^= b & uint32(int32(a)>>31) // a's top bit (x^i), all ones or zero
		a <<= 1
		b = b>>1 ^ castagnoliReversed&-(b&1) // b·x mod P
	}
	return p
}

// byteShifts[j][v] is x^(8·v·256^j) mod P: a length's bytes pick its
// factors, at most four (lengths under 4 GiB), where one per set bit of
// the length made a 16 KiB batch's join cost half its checksum.
var byteShifts = func() (t [4][256]uint32) {
	x8 := uint32(1) << 23 // x^8: one byte
	for j := range t {
		t[j][0] = 1 << 31 // x^0
		for v := 1; v < 256; v++ {
			t[j][v] = mulModP(t[j][v-1], x8)
		}
		x8 = mulModP(t[j][255], x8) // x^(8·256^(j+1))
	}
	return t
}()

// shiftBytes returns x^(8n) mod P, for 0 <= n < 2^32.
func shiftBytes(n int) uint32 {
	p := byteShifts[0][n&0xff]
	for j := 1; j < 4; j++ {
		if v := n >> (8 * j) & 0xff; v != 0 {
			p = mulModP(byteShifts[j][v], p)
		}
	}
	return p
}

// crcJoin returns the CRC-32C of a‖b given crcA = CRC-32C(a), crcB =
// CRC-32C(b) and lenB = len(b).
func crcJoin(crcA, crcB uint32, lenB int) uint32 {
	return mulModP(shiftBytes(lenB), crcA) ^ crcB
}
