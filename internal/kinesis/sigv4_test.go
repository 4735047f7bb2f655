package kinesis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signedRequest is a Kinesis call signed by the AWS SDK's signer at t.
func signedRequest(t *testing.T, key, secret, region string, body string, at time.Time, extra map[string]string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:4567/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", contentJSON)
	r.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	for k, v := range extra {
		r.Header.Set(k, v)
	}
	sum := sha256.Sum256([]byte(body))
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), "kinesis", region, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAuthenticate(t *testing.T) {
	s := &Server{opts: Options{Region: "us-east-1", Credentials: Credentials{"AKID1": "secret1", "AKID2": "secret2"}}}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	body := `{"Limit":5}`
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		body   string
		now    time.Time
		want   string // "" for accepted
		inText string
	}{
		{name: "signed", req: func() *http.Request { return signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil) }},
		{name: "second key, extra signed header", req: func() *http.Request {
			return signedRequest(t, "AKID2", "secret2", "us-east-1", body, at, map[string]string{"X-Amz-Meta-A": "  x   y "})
		}},
		{name: "clock 4m ahead", now: at.Add(4 * time.Minute), req: func() *http.Request { return signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil) }},
		{name: "unsigned", want: errMissingAuthToken, req: func() *http.Request {
			r := signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil)
			r.Header.Del("Authorization")
			return r
		}},
		{name: "unknown key", want: errUnrecognizedClient, req: func() *http.Request { return signedRequest(t, "AKID9", "secret1", "us-east-1", body, at, nil) }},
		{name: "wrong secret", want: errInvalidSignature, inText: "does not match", req: func() *http.Request { return signedRequest(t, "AKID1", "secret2", "us-east-1", body, at, nil) }},
		{name: "body changed", want: errInvalidSignature, body: `{"Limit":6}`, req: func() *http.Request { return signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil) }},
		{name: "target changed", want: errInvalidSignature, req: func() *http.Request {
			r := signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil)
			r.Header.Set("X-Amz-Target", "Kinesis_20131202.DeleteStream")
			return r
		}},
		{name: "signature truncated", want: errInvalidSignature, req: func() *http.Request {
			r := signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil)
			r.Header.Set("Authorization", r.Header.Get("Authorization")[:len(r.Header.Get("Authorization"))-2])
			return r
		}},
		{name: "stale", want: errInvalidSignature, inText: "Signature expired: 20261130T090000Z is now earlier than 20261130T090100Z (20261130T090600Z - 5 min.)", now: at.Add(6 * time.Minute),
			req: func() *http.Request { return signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil) }},
		{name: "from the future", want: errInvalidSignature, inText: "Signature not yet current", now: at.Add(-6 * time.Minute),
			req: func() *http.Request { return signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil) }},
		{name: "other region", want: errInvalidSignature, inText: "region", req: func() *http.Request { return signedRequest(t, "AKID1", "secret1", "eu-west-1", body, at, nil) }},
		{name: "no date", want: errIncompleteSignature, req: func() *http.Request {
			r := signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil)
			r.Header.Del("X-Amz-Date")
			return r
		}},
		{name: "other algorithm", want: errIncompleteSignature, req: func() *http.Request {
			r := signedRequest(t, "AKID1", "secret1", "us-east-1", body, at, nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA1"+strings.TrimPrefix(r.Header.Get("Authorization"), sigAlgorithm))
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = at.Add(time.Second)
			}
			b := body
			if tc.body != "" {
				b = tc.body
			}
			err := s.authenticate(tc.req(), []byte(b), now)
			typ := ""
			if err != nil {
				typ, _, _ = mapError(err)
			}
			if typ != tc.want || (err != nil && !strings.Contains(err.Error(), tc.inText)) {
				t.Fatalf("got %v, want %q (%q)", err, tc.want, tc.inText)
			}
		})
	}
	// Without credentials everything is accepted.
	open := &Server{opts: Options{Region: "us-east-1"}}
	r, _ := http.NewRequest(http.MethodPost, "http://x/", nil)
	if err := open.authenticate(r, nil, at); err != nil {
		t.Fatalf("no credentials: %v", err)
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "creds")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := LoadCredentials(write("# keys\nAKID1 s1\n\n  AKID2\ts2  \n"))
	if err != nil || len(c) != 2 || c["AKID1"] != "s1" || c["AKID2"] != "s2" {
		t.Fatalf("got %v %v", c, err)
	}
	for _, bad := range []string{"", "# only a comment\n", "AKID1\n", "AKID1 s1 extra\n", "AKID1 s1\nAKID1 s2\n"} {
		if _, err := LoadCredentials(write(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := LoadCredentials(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("missing file accepted")
	}
}
