package kinesis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// TestAuthenticateHTTP2Authority checks a request as the AWS SDK for
// JavaScript v3 sends it over HTTP/2: it signs the :authority
// pseudo-header instead of host (the door refused every such call until
// the verifier knew it). The headers and the signature are what the JS SDK
// (@aws-sdk/client-kinesis 3.1143.0, NodeHttp2Handler) produced for
// ListStreams {"Limit":5} with AKID1/secret1 at 2026-11-30T09:00:00Z;
// they travel over a real h2c connection so that the door sees the
// request as Go's HTTP/2 server presents it (the authority in r.Host).
func TestAuthenticateHTTP2Authority(t *testing.T) {
	s := &Server{opts: Options{Region: "us-east-1", Credentials: Credentials{"AKID1": "secret1"}}}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const body = `{"Limit":5}`
	jsHeaders := map[string]string{
		"content-type":          "application/x-amz-json-1.1",
		"x-amz-target":          "Kinesis_20131202.ListStreams",
		"x-amz-user-agent":      "aws-sdk-js/3.1142.0",
		"amz-sdk-invocation-id": "87cbbce0-2d48-4e7e-ba66-8ad617755564",
		"amz-sdk-request":       "attempt=1; max=1",
		"x-amz-date":            "20261130T090000Z",
		"x-amz-content-sha256":  "1dd92f0d0f6e082c84a6472a0975083e33c9a095b75b9ad8f8ed9bde2482b5ef",
		"authorization": "AWS4-HMAC-SHA256 Credential=AKID1/20261130/us-east-1/kinesis/aws4_request, " +
			"SignedHeaders=:authority;amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;x-amz-content-sha256;x-amz-date;x-amz-target;x-amz-user-agent, " +
			"Signature=17e9e08c046f3995bdf4d599fdd4cce36a290d4e94596dd2eba02998ba1e03a9",
	}
	for _, tc := range []struct {
		name      string
		authority string
		body      string
		want      string // "" for accepted
	}{
		{name: "as signed", authority: "127.0.0.1:4567", body: body},
		{name: "other authority", authority: "127.0.0.1:4568", body: body, want: errInvalidSignature},
		{name: "other body", authority: "127.0.0.1:4567", body: `{"Limit":6}`, want: errInvalidSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var only2 http.Protocols
			only2.SetUnencryptedHTTP2(true)
			got := make(chan error, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err == nil && r.ProtoMajor != 2 {
					err = fmt.Errorf("request came over %s, want HTTP/2", r.Proto)
				}
				if err == nil {
					err = s.authenticate(r, b, at)
				}
				got <- err
			}))
			srv.Config.Protocols = &only2
			srv.Start()
			defer srv.Close()
			r, err := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			r.Host = tc.authority // becomes :authority
			for k, v := range jsHeaders {
				r.Header.Set(k, v)
			}
			resp, err := (&http.Client{Transport: &http.Transport{Protocols: &only2}}).Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			err = <-got
			typ := ""
			if err != nil {
				typ, _, _ = mapError(err)
			}
			if typ != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
