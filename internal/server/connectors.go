package server

import (
	"encoding/json"
	"log/slog"
	"net"
	"strconv"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/connect/file"
	"github.com/braidstream/braid/internal/connect/httpsink"
	"github.com/braidstream/braid/internal/connect/httpsource"
	"github.com/braidstream/braid/internal/connect/pgcdc"
	"github.com/braidstream/braid/internal/connect/pgsink"
	"github.com/braidstream/braid/internal/connect/s3sink"
	"github.com/braidstream/braid/internal/connect/transform"
)

// connectorTypes are the connector types this build knows.
var connectorTypes = connect.NewRegistry(
	file.SinkType,
	file.SourceType,
	s3sink.Type,
	httpsink.Type,
	httpsource.Type,
	pgsink.Type,
	pgcdc.Type,
)

// parseTransforms is the transforms language (internal/connect/transform).
func parseTransforms(raw []json.RawMessage) (connect.Chain, error) {
	c, err := transform.Parse(raw)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// connectorOptions points the connect runtime at this node: its data
// directory and its own Kafka listener on loopback.
func connectorOptions(cfg Config, kafkaAddr net.Addr, logger *slog.Logger) connect.Options {
	addr := kafkaAddr.String()
	if tcp, ok := kafkaAddr.(*net.TCPAddr); ok && (tcp.IP.IsUnspecified() || tcp.IP == nil) {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return connect.Options{DataDir: cfg.DataDir, KafkaAddr: addr, Types: connectorTypes, Logger: logger,
		ParseTransforms: parseTransforms}
}
