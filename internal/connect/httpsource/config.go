package httpsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
)

// config is the connector's "config" object.
type config struct {
	// Listen is the address of the ingest listener, host:port (required).
	Listen string `json:"listen"`
	// Path is the ingest path (default /records).
	Path string `json:"path"`
	// AuthToken, if set, is required as "Authorization: Bearer <token>".
	AuthToken string `json:"auth_token"`
	// MaxBodyBytes bounds a request body (default 8 MiB).
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// Body is records (default: record objects) or values (plain JSON
	// values, each a record's value).
	Body string `json:"body"`
}

const (
	bodyRecords = "records"
	bodyValues  = "values"
)

func defaultConfig() config {
	return config{Path: "/records", MaxBodyBytes: 8 << 20, Body: bodyRecords}
}

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, errors.New("http-source: config: listen is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("http-source: config: %w", err)
	}
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("http-source: config: %w", err)
	}
	return c, nil
}

func (c *config) validate() error {
	if c.Listen == "" {
		return errors.New("listen is required (host:port of the ingest listener)")
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("listen %q: needs a fixed port, callers must know where to POST", c.Listen)
	}
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("path %q: must start with /", c.Path)
	}
	if strings.ContainsAny(c.AuthToken, "\r\n ") {
		return errors.New("auth_token: must not hold spaces or line breaks")
	}
	if c.MaxBodyBytes < 1 {
		return fmt.Errorf("max_body_bytes %d: must be at least 1", c.MaxBodyBytes)
	}
	if c.Body != bodyRecords && c.Body != bodyValues {
		return fmt.Errorf("body %q: want %s or %s", c.Body, bodyRecords, bodyValues)
	}
	return nil
}
