package kinesis

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Signature Version 4, checked as AWS checks it, when the door has
// credentials (--kinesis-credentials). Without them every request is
// accepted, signed or not, as emulators do.
//
// The check is written out here rather than done by re-signing with the AWS
// SDK's signer: that signer chooses the headers to sign itself (it always
// adds content-length, never user-agent), while a verifier must sign
// exactly the headers the client listed in SignedHeaders, whichever SDK it
// is. The tests check this verifier against the SDK's signer.

// SignatureSkew is how far a request's X-Amz-Date may be from the door's
// clock.
const SignatureSkew = 5 * time.Minute

const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	sigService    = "kinesis"
	amzDateFormat = "20060102T150405Z"
	// The messages AWS answers with.
	msgMissingToken = "Missing Authentication Token"
	msgUnknownKey   = "The security token included in the request is invalid."
	msgBadSignature = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// Credentials maps access key ids to secret keys.
type Credentials map[string]string

// LoadCredentials reads a credentials file: one "ACCESS_KEY_ID SECRET" pair
// a line; blank lines and lines starting with # are skipped.
func LoadCredentials(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	creds := Credentials{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"ACCESS_KEY_ID SECRET\", got %d fields", path, n, len(fields))
		}
		if _, dup := creds[fields[0]]; dup {
			return nil, fmt.Errorf("%s:%d: access key %s listed twice", path, n, fields[0])
		}
		creds[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(creds) == 0 {
		return nil, fmt.Errorf("%s: no credentials in the file", path)
	}
	return creds, nil
}

// authenticate checks r's signature over body, if the door has
// credentials.
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) error {
	if s.opts.Credentials == nil {
		return nil
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return errorf(errMissingAuthToken, msgMissingToken)
	}
	algo, rest, _ := strings.Cut(auth, " ")
	if algo != sigAlgorithm {
		return errorf(errIncompleteSignature, "Authorization header must use %s, not %q", sigAlgorithm, algo)
	}
	params := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = v
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[k] == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", k))
		}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return errorf(errIncompleteSignature, "%s Authorization=%s", strings.Join(missing, " "), auth)
	}
	scope := strings.Split(params["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return errorf(errIncompleteSignature, "Credential %q is not ACCESS_KEY/DATE/REGION/SERVICE/aws4_request", params["Credential"])
	}
	secret, ok := s.opts.Credentials[scope[0]]
	if !ok {
		return errorf(errUnrecognizedClient, msgUnknownKey)
	}
	signed, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return errorf(errIncompleteSignature, "X-Amz-Date %q is not in ISO 8601 basic format (%s)", amzDate, amzDateFormat)
	}
	now = now.UTC()
	if signed.Before(now.Add(-SignatureSkew)) {
		return errorf(errInvalidSignature, "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			amzDate, now.Add(-SignatureSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	if signed.After(now.Add(SignatureSkew)) {
		return errorf(errInvalidSignature, "Signature not yet current: %s is still later than %s (%s + 5 min.)",
			amzDate, now.Add(SignatureSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	if scope[1] != amzDate[:8] {
		return errorf(errInvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", scope[1], amzDate[:8], amzDate)
	}
	if scope[2] != s.opts.Region {
		return errorf(errInvalidSignature, "Credential should be scoped to a valid region, not '%s'.", scope[2])
	}
	if scope[3] != sigService {
		return errorf(errInvalidSignature, "Credential should be scoped to correct service: '%s'.", sigService)
	}
	names := strings.Split(params["SignedHeaders"], ";")
	// HTTP/2 clients may sign the :authority pseudo-header instead (the
	// AWS SDK for JavaScript v3 does); either carries r.Host.
	if !contains(names, "host") && !contains(names, ":authority") {
		return errorf(errInvalidSignature, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	want := signature(secret, scope[1], scope[2], amzDate, canonicalRequest(r, names, body))
	got, err := hex.DecodeString(params["Signature"])
	if err != nil || !hmac.Equal(want, got) {
		return errorf(errInvalidSignature, msgBadSignature)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// canonicalRequest is SigV4's canonical form of r, over the headers the
// client signed.
func canonicalRequest(r *http.Request, signedHeaders []string, body []byte) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(path + "\n")
	b.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, name := range signedHeaders {
		var values []string
		switch name {
		case "host", ":authority":
			values = []string{r.Host}
		case "content-length":
			values = r.Header.Values(name)
			if len(values) == 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		default:
			values = r.Header.Values(name)
		}
		for i, v := range values {
			values[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}
	b.WriteString("\n" + strings.Join(signedHeaders, ";") + "\n")
	sum := sha256.Sum256(body)
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.String()
}

func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return sigEscape(keys[i]) < sigEscape(keys[j]) })
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Slice(vs, func(i, j int) bool { return sigEscape(vs[i]) < sigEscape(vs[j]) })
		for _, v := range vs {
			parts = append(parts, sigEscape(k)+"="+sigEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

func sigEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// signature is the SigV4 signature of a canonical request.
func signature(secret, date, region, amzDate, canonical string) []byte {
	sum := sha256.Sum256([]byte(canonical))
	toSign := sigAlgorithm + "\n" + amzDate + "\n" + date + "/" + region + "/" + sigService + "/aws4_request\n" + hex.EncodeToString(sum[:])
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, sigService)
	k = hmacSHA256(k, "aws4_request")
	return hmacSHA256(k, toSign)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
