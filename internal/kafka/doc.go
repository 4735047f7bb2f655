// Package kafka is Braid's Kafka wire-protocol door. Requests are decoded and
// responses encoded with franz-go's kmsg; this package only frames them and
// maps them onto the engine.
//
// One file per API (00_produce.go, 01_fetch.go, ...), each registering its
// handler and the versions it answers in one table; ApiVersions answers from
// that same table, so what is advertised is exactly what is handled.
//
// # Connections
//
// Each connection has a reader goroutine and a writer goroutine. The reader
// decodes requests one by one and runs their handler, which does the part
// that must happen in request order (for produce: validating and appending,
// which fixes offsets) and may return a completion to run later (waiting for
// the fsync, or a fetch's long poll). The writer runs completions and writes
// responses strictly in request order. So a producer may pipeline several
// requests on one connection and they all ride the same group commit, while
// responses still come back in order, as the protocol requires.
//
// Limits: a request body is read into a buffer that grows as its bytes
// arrive, each growth taken from the connection's budget (MaxRequestBytes)
// and the server's (QueuedMaxRequestBytes) and given back once answered. A
// request must arrive whole within RequestTimeout of its first byte and a
// response be taken within it; a connection with nothing in flight is
// closed after ConnectionsMaxIdle; connections past MaxConnections or
// MaxConnectionsPerIP are closed at once. The writer flushes before it
// runs a completion, so a finished answer never waits behind a long poll.
//
// A frame larger than Options.MaxRequestBytes, an unknown API key or
// version, or a body that does not decode closes that connection (after
// answering ApiVersions per KIP-511 where that applies); the server goes on
// serving everyone else. A handler panic is recovered and closes only its
// connection; it is logged (PanicLogMessage) and counted
// (braid_kafka_handler_panics_total), and the fuzz target and braidtest fail
// on it.
package kafka
