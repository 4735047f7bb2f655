package httpsink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// config is the connector's "config" object.
type config struct {
	// URL receives the POSTs; http or https.
	URL string `json:"url"`
	// Headers are added to every POST (an Authorization header, say).
	Headers map[string]string `json:"headers"`
	// BatchMaxRecords is the most records in one POST (default 500).
	BatchMaxRecords int `json:"batch_max_records"`
	// BatchMaxBytes is the most body bytes of one POST (default 1 MiB);
	// a record larger than that goes alone.
	BatchMaxBytes int `json:"batch_max_bytes"`
	// BatchMaxWait is how long a record may wait for its batch to fill
	// (default 1s).
	BatchMaxWait duration `json:"batch_max_wait"`
	// Format is json_array (default) or jsonl.
	Format string `json:"format"`
	// Timeout bounds one POST, answer included (default 10s).
	Timeout duration `json:"timeout"`
}

const (
	formatJSONArray = "json_array"
	formatJSONL     = "jsonl"
)

func defaultConfig() config {
	return config{
		BatchMaxRecords: 500,
		BatchMaxBytes:   1 << 20,
		BatchMaxWait:    duration(time.Second),
		Format:          formatJSONArray,
		Timeout:         duration(10 * time.Second),
	}
}

// reservedHeaders are set by the sink itself.
var reservedHeaders = map[string]bool{
	"Idempotency-Key": true,
	"Content-Length":  true,
	"Content-Type":    true,
	"Host":            true,
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// parseConfig decodes and checks raw; unknown fields are errors, so a
// misspelt option is not silently ignored.
func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, errors.New("http-sink: config: url is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("http-sink: config: %w", err)
	}
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("http-sink: config: %w", err)
	}
	return c, nil
}

func (c *config) validate() error {
	if c.URL == "" {
		return errors.New("url is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q: scheme must be http or https", c.URL)
	}
	if u.Host == "" {
		return fmt.Errorf("url %q: no host", c.URL)
	}
	for name, value := range c.Headers {
		if !headerName.MatchString(name) {
			return fmt.Errorf("headers: %q is not a valid header name", name)
		}
		if reservedHeaders[http.CanonicalHeaderKey(name)] {
			return fmt.Errorf("headers: %s is set by the sink", http.CanonicalHeaderKey(name))
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("headers: the value of %s holds a line break or NUL", name)
		}
	}
	if c.BatchMaxRecords < 1 {
		return fmt.Errorf("batch_max_records %d: must be at least 1", c.BatchMaxRecords)
	}
	if c.BatchMaxBytes < 1 {
		return fmt.Errorf("batch_max_bytes %d: must be at least 1", c.BatchMaxBytes)
	}
	if c.BatchMaxWait <= 0 {
		return fmt.Errorf("batch_max_wait %s: must be positive", time.Duration(c.BatchMaxWait))
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout %s: must be positive", time.Duration(c.Timeout))
	}
	if c.Format != formatJSONArray && c.Format != formatJSONL {
		return fmt.Errorf("format %q: want %s or %s", c.Format, formatJSONArray, formatJSONL)
	}
	return nil
}

// duration is a time.Duration written as a Go duration string ("1s",
// "250ms").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string like \"1s\" or \"250ms\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = duration(v)
	return nil
}
