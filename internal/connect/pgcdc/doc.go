// Package pgcdc is the postgres-cdc connector: a source that streams the
// changes of PostgreSQL tables (inserts, updates, deletes) into Braid
// through logical replication with the built-in pgoutput plugin.
//
// Open makes sure of the publication (FOR TABLE the configured tables;
// created if missing, missing tables added) and the replication slot
// (created if missing), then starts replication at the stored position.
// The slot is the connector's own: Open may drop and recreate it (below).
// Poll hands out whole transactions only, in commit order; each change is
// one record, keyed by the primary key's values as a JSON object, its
// value a JSON change event:
//
//	{"op": "c"|"u"|"d", "before": {...}|null, "after": {...}|null,
//	 "source": {"lsn": "0/16B3748", "txid": 731, "commit_time": "...",
//	            "schema": "public", "table": "orders"}}
//
// "before" is the old row when the table's REPLICA IDENTITY is FULL, the
// old key columns when an update changed the key or for a delete under
// the default identity, else null. A delete is followed by a tombstone
// (same key, nil value), as Debezium does, so a compacted stream drops
// the row. Column values: booleans, integers, floats and numerics are
// JSON numbers (NaN and infinities strings), json/jsonb are embedded,
// everything else is its PostgreSQL text form; an unchanged TOASTed value
// (not sent by PostgreSQL) is left out of "after".
//
// Position: the end LSN of the last transaction handed out (text, e.g.
// "0/16B3748"), or, when no transaction is open, the server's position
// from a keepalive, so a quiet table does not pin WAL. Committed sends a
// standby status update confirming that LSN, so PostgreSQL keeps the WAL
// Braid does not have yet; Open restarts at the position and drops any
// transaction that ends at or before it.
//
// Initial snapshot (snapshot: initial, the default): on a first start
// (no position) the slot is created, dropped first if it exists, inside a
// repeatable-read transaction that reads the tables as of the slot's
// consistent point (USE_SNAPSHOT); their rows come first, as op "r"
// (source.snapshot true), then the changes committed after that point.
// While the snapshot is handed out the position is "snapshot"; PostgreSQL
// cannot resume an exported snapshot, so Open, given that position, takes
// the snapshot again with a new slot, and the rows handed out before come
// again (exactly once holds for changes, at least once for a snapshot cut
// short). snapshot: never streams changes only.
//
// The streams the template names must exist (braid stream create), unless
// the node runs with --auto-create-topics: the runtime produces to them.
//
// Not done: TRUNCATE is logged and not turned into records; a transaction
// is held in memory until its commit.
//
// A definition (config fields: config.go); the user needs REPLICATION and
// the server wal_level = logical:
//
//	name: shop-cdc
//	type: postgres-cdc
//	stream: shop-changes        # unused when the template names each record's
//	delivery: exactly-once
//	config:
//	  url: postgres://braid:secret@db:5432/shop
//	  tables: [public.orders, public.customers]
//	  stream: "pg.{schema}.{table}"  # default {schema}.{table}
//	  publication: shop_cdc     # default braid_<connector>
//	  slot: shop_cdc            # default braid_<connector>
//	  snapshot: initial         # or never
//
// Concurrency: the runtime calls one method at a time; a mutex guards the
// replication connection all the same.
package pgcdc
