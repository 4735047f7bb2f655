// Package httpsource is the http-source connector: an ingest endpoint on
// a listener of its own that writes what callers POST into a stream.
//
// Requests. POST <path> (default /records) with a JSON array or JSON lines
// (one JSON value per line; a body whose first non-space byte is '[' is
// an array) of record objects
//
//	{"key": <JSON>, "value": <JSON>, "stream": "optional", "headers": {"name": "value"},
//	 "key_encoding": "base64", "value_encoding": "base64"}
//
// or, with body: values, of plain JSON values (each one a record's value,
// with no key). A key or value is stored as its compact JSON text ("a" is
// the three bytes "a" with its quotes), the form http-sink embeds again;
// with key_encoding or value_encoding "base64" it must be a JSON string
// and its decoded bytes are stored. A missing or null value is a
// tombstone. A record without "stream" goes to the definition's stream.
// With auth_token set, requests need Authorization: Bearer <token>.
//
// Answers. A request is held until the runtime reports (Committed) that
// its records are durable in Braid, then answered 200 {"accepted": n}.
// Poll hands over whole requests only, so one request's records are
// written together (in one transaction where the runtime writes
// transactionally). Bad input changes nothing: 400 with the line and
// column (or record) of the error for a malformed body, 413 beyond
// max_body_bytes (default 8 MiB), 401 without the token, 405 for other
// methods. When the source closes (the node stops, the runtime restarts
// it) every request not yet answered gets 503 with Retry-After, and a
// request whose records may already be written is answered the same way:
// the caller must retry, so delivery is at-least-once. A caller that
// gives up before its request was handed to Poll writes nothing. When
// more than 8 x max_body_bytes wait to be written, new requests get 503
// at once.
//
// Position. A counter of requests handed to Poll, 8 bytes big-endian.
// The source has nothing to resume (its callers hold the data until they
// get their 200); Open only continues the counter.
//
// Concurrency: HTTP handlers enqueue requests and wait; Poll takes them
// and Committed answers them. One mutex guards the queue, the in-flight
// list and the counter; no lock is held while waiting.
package httpsource
