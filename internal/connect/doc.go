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
//
// The runtime (manager.go) runs one goroutine per connector; a failing
// connector never stops another. A worker's run builds the connector from
// its type, opens it and moves records until it is stopped (pause, restart,
// delete, node shutdown: a sink flushes and commits on the way out) or
// fails: a bad record under the fail policy, or a bad config, ends in
// state failed; anything else is retried with backoff (1s doubling up to
// errors.retry_backoff_max), each retry a fresh run from the durable
// position.
//
// Invariants:
//
//   - a sink's group offsets never pass what its sink reports durable, so
//     a crash re-reads and never skips;
//   - a sink run is the only member of its group: it removes members left
//     over by a killed run before it joins;
//   - an exactly-once source writes each batch and the position after it
//     in one transaction, and takes its transactional id over before it
//     reads its position (read_committed), so a batch is never written
//     twice;
//   - a definition is saved (temp file, fsync, rename, directory fsync)
//     before the API answers, and a file that cannot be read is shown as
//     a failed connector, never dropped.
//
// Concurrency: Manager.mu guards the set of connectors; connector.opMu
// orders one connector's life-cycle changes; connector.mu (a leaf) guards
// its status. docs/design.md has the lock order.
package connect
