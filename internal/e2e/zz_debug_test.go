package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

func TestZZDebug(t *testing.T) {
	p := braidtest.Start(t)
	for _, combo := range [][]int{{1, 1}, {0, 1}, {0, 0}, {1, 0}, {2, 2}, {0, 2}} {
		conn := dialRaw(t, p.KafkaAddr)
		f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e"))
		var frames []byte
		for i, k := range combo {
			var req kmsg.Request
			switch k {
			case 0:
				req = kmsg.NewPtrApiVersionsRequest()
				req.SetVersion(2)
			case 1:
				req = kmsg.NewPtrMetadataRequest()
				req.SetVersion(12)
			case 2:
				req = kmsg.NewPtrApiVersionsRequest()
				req.SetVersion(3)
			}
			frames = f.AppendRequest(frames, req, int32(1000+i))
		}
		conn.write(frames)
		for i := range combo {
			corr, b, err := conn.readFrame(2 * time.Second)
			t.Logf("combo %v answer %d: corr %d len %d err %v", combo, i, corr, len(b), err)
		}
	}
}
