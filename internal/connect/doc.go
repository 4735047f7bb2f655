// Package connect runs connectors inside braid serve: sinks that move a
// stream's records into another system (object storage, PostgreSQL, HTTP,
// files) and sources that bring records in.
//
// A connector is a Type (one package per type under internal/connect)
// plus a definition: a small YAML or JSON document naming the type, the
// streams, the delivery guarantee, the error policy, transforms and the
// type's own config. The runtime reads and writes Braid through the
// node's own Kafka listener, like any client:
//
//   - a sink is the consumer group connect-<name>; its progress is the
//     group's committed offsets, or, for an exactly-once sink, the
//     position it keeps in the target atomically with the data;
//   - a source writes with a transactional (exactly-once) or idempotent
//     (at-least-once) producer and keeps its position in Braid, in the
//     same transaction as the records it covers.
//
// The interfaces a connector implements are in connector.go.
package connect
