package server

import (
	"log/slog"
	"net"
	"strconv"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/connect/file"
	"github.com/braidstream/braid/internal/connect/httpsink"
	"github.com/braidstream/braid/internal/connect/httpsource"
)

// connectorTypes are the connector types this build knows. Transforms are
// wired in connectorOptions (ParseTransforms) once the transform package
// is merged:
//
//	ParseTransforms: func(raw []json.RawMessage) (connect.Chain, error) {
//		c, err := transform.Parse(raw)
//		if err != nil {
//			return nil, err
//		}
//		return c, nil
//	},
var connectorTypes = connect.NewRegistry(
	file.SinkType,
	file.SourceType,
	httpsink.Type,
	httpsource.Type,
)

// connectorOptions points the connect runtime at this node: its data
// directory and its own Kafka listener on loopback.
func connectorOptions(cfg Config, kafkaAddr net.Addr, logger *slog.Logger) connect.Options {
	addr := kafkaAddr.String()
	if tcp, ok := kafkaAddr.(*net.TCPAddr); ok && (tcp.IP.IsUnspecified() || tcp.IP == nil) {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return connect.Options{DataDir: cfg.DataDir, KafkaAddr: addr, Types: connectorTypes, Logger: logger}
}
