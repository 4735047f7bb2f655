package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// sized prefixes b with its length, as a Kafka frame.
func sized(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// header returns a request header v1 (key, version, correlation id,
// client id).
func header(key, version int16, corr int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 9)
	return append(b, "braid-e2e"...)
}

// expectClosed reads from c until the server closes the connection; it
// fails if the server answers anything or keeps the connection open.
func expectClosed(t testing.TB, c *rawConn) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	total := 0
	for {
		n, err := c.nc.Read(buf)
		total += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection still open 5s after the bad request (%d bytes answered)", total)
			}
			if total > 0 {
				t.Errorf("server answered %d bytes before closing", total)
			}
			return // EOF or reset: closed
		}
	}
}

// apiKeys asks for ApiVersions v3 on a fresh connection.
func apiKeys(t testing.TB, addr string) []kmsg.ApiVersionsResponseApiKey {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "braid-e2e", "1.0"
	resp := dialRaw(t, addr).request(req, 3).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions v3: %v, %d keys", kerr.ErrorForCode(resp.ErrorCode), len(resp.ApiKeys))
	}
	return resp.ApiKeys
}

// TestRobustness sends malformed and unsupported requests on raw
// connections: each must close only its own connection.
func TestRobustness(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	const topic = "rb-health"
	createStream(t, ctx, adm, topic, 1, nil)
	// One kgo client on its own connection, used between the bad requests.
	prod := newProducer(t, p)
	next := int64(0)
	healthy := func(t *testing.T) {
		t.Helper()
		ctx := testCtx(t, 10*time.Second)
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("still here %d", next))}
		produce(t, ctx, prod, r)
		if r.Offset != next {
			t.Errorf("health record got offset %d, want %d", r.Offset, next)
		}
		next++
		apiKeys(t, p.KafkaAddr) // and new connections are served
	}
	healthy(t)

	validMetadata := kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e")).AppendRequest(nil,
		func() kmsg.Request { r := kmsg.NewPtrMetadataRequest(); r.SetVersion(12); return r }(), 1)
	garbage := randomBytes(42, 64)

	bad := []struct {
		name  string
		bytes []byte
		eof   bool // half-close the connection after writing
	}{
		{"frame-size-2^31-1", append([]byte{0x7f, 0xff, 0xff, 0xff}, "and a little more"...), false},
		{"frame-size-negative", []byte{0x80, 0, 0, 0, 1, 2, 3, 4}, false},
		{"frame-size-too-small", sized([]byte{0, 3, 0}), false},
		{"garbage-frame", sized(garbage), false},
		{"garbage-body-for-metadata-v1", sized(append(header(3, 1, 7), 0x7f, 0xff, 0xff, 0xff, 0x00, 0x01)), false},
		{"truncated-metadata-v12", sized(validMetadata[4 : len(validMetadata)-1]), false},
		{"header-cut-short", sized(header(3, 12, 7)[:7]), false},
		{"unknown-api-key-999", sized(header(999, 0, 7)), false},
		{"produce-v99", sized(append(header(0, 99, 7), 0, 0, 0, 0)), false},
		{"fetch-v3-below-minimum", sized(append(header(1, 3, 7), garbage[:32]...)), false},
		{"frame-cut-by-eof", []byte{0, 0, 0, 100, 0, 3, 0, 12}, true},
	}
	for _, c := range bad {
		t.Run("closes/"+c.name, func(t *testing.T) {
			conn := dialRaw(t, p.KafkaAddr)
			conn.write(c.bytes)
			if c.eof {
				conn.nc.(*net.TCPConn).CloseWrite()
			}
			expectClosed(t, conn)
			healthy(t)
		})
	}

	keys := apiKeys(t, p.KafkaAddr)
	t.Run("closes/each-api-one-past-max", func(t *testing.T) {
		for _, k := range keys {
			if k.ApiKey == 18 {
				continue // ApiVersions answers instead, see below
			}
			if kmsg.RequestForKey(k.ApiKey) == nil {
				t.Errorf("braid advertises API key %d which kmsg does not know", k.ApiKey)
				continue
			}
			frame := sized(append(header(k.ApiKey, k.MaxVersion+1, 9), 0, 0, 0, 0, 0, 0))
			conn := dialRaw(t, p.KafkaAddr)
			conn.write(frame)
			t.Run(kmsg.NameForKey(k.ApiKey), func(t *testing.T) { expectClosed(t, conn) })
		}
		healthy(t)
	})

	// Every advertised version of every API answers an empty request.
	t.Run("advertised-versions-answer", func(t *testing.T) {
		for _, k := range keys {
			for _, v := range []int16{k.MinVersion, k.MaxVersion} {
				req := kmsg.RequestForKey(k.ApiKey)
				if req == nil || v > req.MaxVersion() {
					t.Errorf("%s v%d: advertised beyond what kmsg knows (%d)", kmsg.NameForKey(k.ApiKey), v, req.MaxVersion())
					continue
				}
				if ar, ok := req.(*kmsg.ApiVersionsRequest); ok {
					ar.ClientSoftwareName, ar.ClientSoftwareVersion = "braid-e2e", "1.0"
				}
				if pr, ok := req.(*kmsg.ProduceRequest); ok {
					pr.Acks = -1 // the default, 0, gets no answer
				}
				dialRaw(t, p.KafkaAddr).request(req, v) // fails t on no answer or a bad one
			}
		}
		healthy(t)
	})

	t.Run("api-versions-v127", func(t *testing.T) {
		conn := dialRaw(t, p.KafkaAddr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(127)
		req.ClientSoftwareName, req.ClientSoftwareVersion = "braid-e2e", "1.0"
		conn.write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e")).AppendRequest(nil, req, 42))
		corr, body, err := conn.readFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("no answer to ApiVersions v127: %v", err)
		}
		if corr != 42 {
			t.Errorf("correlation id %d, want 42", corr)
		}
		// KIP-511: the answer is a v0 response (no header tags).
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("decode the v0 answer: %v (%d bytes)", err, len(body))
		}
		if want := 2 + 4 + 6*len(resp.ApiKeys); len(body) != want {
			t.Errorf("v0 answer is %d bytes, a v0 body with %d keys is %d", len(body), len(resp.ApiKeys), want)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Errorf("error code %d, want %d (UNSUPPORTED_VERSION)", resp.ErrorCode, kerr.UnsupportedVersion.Code)
		}
		if len(resp.ApiKeys) == 0 {
			t.Fatal("no API keys in the answer")
		}
		if !slices.EqualFunc(resp.ApiKeys, keys, func(a, b kmsg.ApiVersionsResponseApiKey) bool {
			return a.ApiKey == b.ApiKey && a.MinVersion == b.MinVersion && a.MaxVersion == b.MaxVersion
		}) {
			t.Errorf("v127 answer lists %+v, v3 lists %+v", resp.ApiKeys, keys)
		}
		i := slices.IndexFunc(resp.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == 18 })
		if i < 0 || resp.ApiKeys[i].MinVersion != 0 || resp.ApiKeys[i].MaxVersion < 3 {
			t.Errorf("ApiVersions itself advertised as %+v", resp.ApiKeys)
		}
		// The connection stays open so the client can retry lower.
		retry := kmsg.NewPtrApiVersionsRequest()
		retry.ClientSoftwareName, retry.ClientSoftwareVersion = "braid-e2e", "1.0"
		again := conn.request(retry, resp.ApiKeys[i].MaxVersion).(*kmsg.ApiVersionsResponse)
		if again.ErrorCode != 0 || len(again.ApiKeys) != len(keys) {
			t.Errorf("retry at v%d: %v, %d keys", resp.ApiKeys[i].MaxVersion, kerr.ErrorForCode(again.ErrorCode), len(again.ApiKeys))
		}
		healthy(t)
	})

	t.Run("api-versions-every-version", func(t *testing.T) {
		for v := int16(0); v <= 4; v++ {
			req := kmsg.NewPtrApiVersionsRequest()
			req.ClientSoftwareName, req.ClientSoftwareVersion = "braid-e2e", "1.0"
			resp := dialRaw(t, p.KafkaAddr).request(req, v).(*kmsg.ApiVersionsResponse)
			if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(keys) {
				t.Errorf("ApiVersions v%d: %v, %d keys", v, kerr.ErrorForCode(resp.ErrorCode), len(resp.ApiKeys))
			}
		}
	})

	t.Run("pipelined-requests-answer-in-order", func(t *testing.T) {
		conn := dialRaw(t, p.KafkaAddr)
		f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e"))
		var frames []byte
		for i := range 20 {
			var req kmsg.Request
			switch i % 3 {
			case 0:
				req = kmsg.NewPtrApiVersionsRequest()
				req.SetVersion(2)
			case 1:
				req = kmsg.NewPtrMetadataRequest()
				req.SetVersion(12)
			default:
				r := kmsg.NewPtrListOffsetsRequest()
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = -1
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
				r.SetVersion(7)
				req = r
			}
			// AppendRequest writes the frame size at the start of dst, so
			// each frame gets its own buffer.
			frames = append(frames, f.AppendRequest(nil, req, int32(1000+i))...)
		}
		conn.write(frames)
		for i := range 20 {
			corr, _, err := conn.readFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			if corr != int32(1000+i) {
				t.Fatalf("answer %d has correlation id %d, want %d", i, corr, 1000+i)
			}
		}
	})
}
