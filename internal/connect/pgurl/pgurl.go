// Package pgurl keeps PostgreSQL connection URLs' passwords out of the
// messages of the postgres connectors (pgsink, pgcdc), and names their
// connections in pg_stat_activity.
package pgurl

import (
	"net/url"
	"strings"
)

// Redacted is the URL with its password replaced by xxxxx.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// RedactErr is err's message with the URL's password replaced by xxxxx.
func RedactErr(err error, raw string) string {
	msg := err.Error()
	u, perr := url.Parse(raw)
	if perr != nil || u.User == nil {
		return msg
	}
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

// ApplicationName names a connector's connections in pg_stat_activity.
func ApplicationName(connector string) string { return "braid-connect-" + connector }
