// Package server assembles a Braid node from one Config: the storage engine,
// the Kafka door and the HTTP endpoint (/healthz, /metrics). Config is the
// only user-facing configuration; every component's options derive from it.
package server
