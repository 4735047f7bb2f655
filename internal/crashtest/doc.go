// Package crashtest holds Braid's crash tests: a real braid process is
// SIGKILLed again and again while producers write with acks=all, and after
// every restart each acknowledged record must be there, at the offset it
// was acknowledged with, with the same key, value and headers, and nothing
// corrupt may ever be served.
package crashtest
