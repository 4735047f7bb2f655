// Package httpsink is the http-sink connector: it POSTs a stream's
// records, in batches, to one URL.
//
// Batches. Records are batched per shard (one POST holds records of one
// shard, in offset order) and a batch is sent when it holds
// batch_max_records records (default 500), when the next record would take
// its body past batch_max_bytes (default 1 MiB; a single larger record
// goes alone), when its first record has waited batch_max_wait (default
// 1s), and on Flush.
//
// Body. format json_array (the default, Content-Type application/json) is
// one JSON array of record objects; format jsonl (application/x-ndjson)
// is one record object per line. A record object is
//
//	{"stream":"orders","shard":0,"offset":42,"timestamp":"2026-01-02T03:04:05.006Z",
//	 "key":<key>,"value":<value>,"headers":{"name":"value"}}
//
// where key and value are embedded as JSON when their bytes are valid
// JSON, else written as base64 strings with "key_encoding":"base64" or
// "value_encoding":"base64"; a nil key or value is null. Header values
// that are not all valid UTF-8 are written base64, with
// "headers_encoding":"base64"; of repeated header names the last wins.
//
// Idempotency-Key. Every POST carries the header
// Idempotency-Key: <connector>/<stream>/<shard>/<first offset of the batch>
// ("/" appears in no connector or stream name, so keys never collide).
// A retry of a batch, and the first batch after a restart (which starts at
// the first record not yet acknowledged), carry the same key, so a
// receiver that drops requests whose key it has seen gets every record
// effectively once. Batches after a restart may be cut at other records
// than before; a receiver that must never see a record twice should also
// drop records by (stream, shard, offset), which identify a record for
// good. The sink itself is at-least-once.
//
// Answers. 2xx: the batch is durable (Durable moves only then). 408, 429,
// 5xx and network errors are transient: the POST is retried with backoff
// (Retry-After honoured, up to a minute) a few times, then Put or Flush
// returns a plain error and the runtime restarts the sink from the last
// durable record. 401, 403, 404, 405 and 407 mean the target or the
// credentials are wrong, not a record: they are returned as plain errors
// at once, so a wrong URL does not dead-letter the whole stream. Any other
// 4xx refuses the batch: the sink bisects it (sending the halves, each
// with its own Idempotency-Key) to find the one record the receiver
// refuses; the records before it are delivered.
//
// A refused record is handed to the error policy as a *BadRecordError
// from Put, which can only name a record of the slice given to that Put.
// A refused record the sink was given by an earlier Put (it sat in a
// batch) is remembered, in Env.DataDir if the runtime gives one, and Put
// or Flush returns a plain error; the sink then refuses further calls
// until it is opened again. The runtime restarts it from the last durable
// record, the refused one, and the first Put that holds it returns the
// *BadRecordError for it without asking the target again.
//
// Concurrency: the runtime calls one method at a time; the sink has no
// goroutines of its own.
package httpsink
