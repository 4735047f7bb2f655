package kinesis

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
)

// A shard iterator is opaque to clients: stream id, shard, offset and
// issue time, signed with a key derived from the cluster id (so iterators
// survive a restart but cannot be forged), base64url-encoded. It expires
// IteratorTTL after it was issued, as in Kinesis.

// IteratorTTL is how long a shard iterator stays valid.
const IteratorTTL = 5 * time.Minute

const iterBody = 8 + 4 + 8 + 8

func iteratorKey(clusterID string) []byte {
	k := sha256.Sum256([]byte("braid kinesis shard iterator\x00" + clusterID))
	return k[:]
}

// iterator is a decoded shard iterator.
type iterator struct {
	stream catalog.StreamID
	shard  catalog.ShardID
	offset shard.Offset
	issued time.Time
}

func (s *Server) encodeIterator(it iterator) string {
	b := make([]byte, iterBody, iterBody+16)
	binary.BigEndian.PutUint64(b, uint64(it.stream))
	binary.BigEndian.PutUint32(b[8:], uint32(it.shard))
	binary.BigEndian.PutUint64(b[12:], uint64(it.offset))
	binary.BigEndian.PutUint64(b[20:], uint64(it.issued.UnixMilli()))
	m := hmac.New(sha256.New, s.iterKey)
	m.Write(b)
	b = append(b, m.Sum(nil)[:16]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeIterator checks and decodes a shard iterator; now decides expiry.
func (s *Server) decodeIterator(text string, now time.Time) (iterator, error) {
	b, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(b) != iterBody+16 {
		return iterator{}, errorf(errInvalidArgument, "invalid ShardIterator")
	}
	m := hmac.New(sha256.New, s.iterKey)
	m.Write(b[:iterBody])
	if !hmac.Equal(m.Sum(nil)[:16], b[iterBody:]) {
		return iterator{}, errorf(errInvalidArgument, "invalid ShardIterator")
	}
	it := iterator{
		stream: catalog.StreamID(binary.BigEndian.Uint64(b)),
		shard:  catalog.ShardID(binary.BigEndian.Uint32(b[8:])),
		offset: shard.Offset(binary.BigEndian.Uint64(b[12:])),
		issued: time.UnixMilli(int64(binary.BigEndian.Uint64(b[20:]))),
	}
	if now.Sub(it.issued) > IteratorTTL {
		return iterator{}, errorf(errExpiredIterator, "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			it.issued.UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123), IteratorTTL.Milliseconds())
	}
	return it, nil
}
