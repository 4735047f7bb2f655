// Package transform is the small language of a connector definition's
// transforms: a list of steps applied in order to each record's value,
// which must be a JSON object. There are no expressions and no scripts, on
// purpose: a step names fields and that is all.
//
//	transforms:
//	  - {select: [id, total, customer]}   # keep only these fields
//	  - {drop: [customer.ssn]}            # remove these fields
//	  - {rename: {total: amount}}         # new names, same place
//	  - {insert_metadata: {stream: _stream, shard: _shard, offset: _offset, timestamp: _ts}}
//	  - {filter: {field: status, op: eq, value: paid}}  # eq, ne, in, exists, not_exists
//
// Field paths are dotted: customer.ssn is the field ssn of the object in
// the field customer (a key that holds a dot cannot be named). A missing
// field is never an error: select and drop skip it, filter's eq and in
// drop the record, ne and not_exists keep it. Rename refuses to overwrite
// a field that exists (the record is then bad). insert_metadata replaces
// a field that exists in its place, adds the others last and creates the
// objects a dotted path needs; the timestamp is RFC 3339 in UTC with
// milliseconds ("2026-11-30T16:00:00.123Z"), null when the record has
// none.
//
// Cost: an empty Chain does not look at the value. Otherwise Apply checks
// the value once (json.Valid) and splits only the objects a step reaches
// into; values it keeps are copied as written, and the record is encoded
// again only when a step changed it, with its fields in their order. A
// filter alone never re-encodes.
//
// A Chain is immutable after Parse and safe for concurrent use; Apply
// changes only the record it is given.
package transform
