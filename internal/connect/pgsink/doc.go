// Package pgsink is the postgres-sink connector: it writes a stream's JSON
// records as rows of a PostgreSQL table, exactly once.
//
// Each Put is one transaction: the rows (batch_size at a time, each batch
// one INSERT ... SELECT FROM json_populate_recordset, so PostgreSQL itself
// converts JSON to the column types) and the connector's progress, one row
// per shard in braid_connect_offsets(connector, stream, shard,
// next_offset). Open reads that table back; the runtime starts there, and
// Put drops records below a shard's next_offset, so a replay after a
// crash writes no row twice. Put writes at once, so Durable is the table's
// progress and Flush has nothing to do.
//
// With deletes (mode upsert), a tombstone deletes the row with its key,
// in order with the writes around it: a postgres-cdc stream replicates a
// table this way, with a transform that filters out its op "d" events
// (the tombstone after each does the delete).
//
// A record the table refuses for good (not a JSON object, a field that is
// no column, a value of the wrong type, a NULL in a NOT NULL column, a
// check or unique violation in insert mode) is a *connect.BadRecordError:
// when a batch fails, the rows are tried one by one, each under a
// savepoint, to find the first bad one; the rows before it are committed
// with their progress. Any other failure (connection lost, permission
// denied) is a plain error and the runtime retries.
//
// A definition (config fields: config.go):
//
//	name: orders-to-pg
//	type: postgres-sink
//	streams: [orders]
//	delivery: exactly-once
//	config:
//	  url: postgres://braid:secret@db:5432/shop
//	  table: public.orders
//	  mode: upsert              # or insert (default)
//	  key_columns: [id]         # default: the record key in key_column "key"
//	  columns: {id: id, total: amount.value, customer: customer.name}
//	  create_table: true        # types from column_types or the first batch
//	  batch_size: 500
//	  deletes: true             # a tombstone deletes its key's row (upsert)
//
// Concurrency: one sink is used by one goroutine at a time (the runtime's
// contract); it owns one connection.
package pgsink
