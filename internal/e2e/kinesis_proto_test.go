package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/fxamacker/cbor/v2"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/braidstream/braid/internal/braidtest"
)

const (
	ctJSON = "application/x-amz-json-1.1"
	ctCBOR = "application/x-amz-cbor-1.1"
)

// kinesisPost sends one raw request to the Kinesis door and returns the
// status, Content-Type and body of the answer.
func kinesisPost(t *testing.T, c *http.Client, url, method, contentType, op string, body []byte) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if op != "" {
		req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// awsErrorBody decodes an error answer in either encoding.
func awsErrorBody(t *testing.T, contentType string, b []byte) (typ, msg string) {
	t.Helper()
	var m map[string]string
	var err error
	if contentType == ctCBOR {
		err = cbor.Unmarshal(b, &m)
	} else {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatalf("error answer %q (%s) does not decode: %v", b, contentType, err)
	}
	return m["__type"], m["message"]
}

func createTopics(t *testing.T, p *braidtest.Proc, names ...string) {
	t.Helper()
	adm := kadm.NewClient(p.Client())
	defer adm.Close()
	for _, n := range names {
		if _, err := adm.CreateTopic(context.Background(), 1, -1, nil, n); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKinesisCBOR speaks CBOR 1.1, as the AWS SDK for Java does by default:
// requests decode as their JSON twins, answers and errors come back in CBOR
// with timestamps as tag 1 (epoch milliseconds).
func TestKinesisCBOR(t *testing.T) {
	p := braidtest.Start(t)
	createTopics(t, p, "cb-a", "cb-b", "cb-c")
	url := "http://" + p.KinesisAddr + "/"
	type summary struct {
		StreamName              string
		StreamCreationTimestamp cbor.RawMessage
	}
	type page struct {
		StreamNames     []string
		HasMoreStreams  bool
		NextToken       string
		StreamSummaries []summary
	}
	var names []string
	var next string
	for range 3 {
		in := map[string]any{"Limit": 2}
		if next != "" {
			in["NextToken"] = next
		}
		body, err := cbor.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		status, ct, b := kinesisPost(t, nil, url, http.MethodPost, ctCBOR, "ListStreams", body)
		if status != 200 || ct != ctCBOR {
			t.Fatalf("ListStreams: %d %s %x", status, ct, b)
		}
		var out page
		if err := cbor.Unmarshal(b, &out); err != nil {
			t.Fatalf("answer %x: %v", b, err)
		}
		for _, s := range out.StreamSummaries {
			var tag cbor.RawTag
			if err := cbor.Unmarshal(s.StreamCreationTimestamp, &tag); err != nil || tag.Number != 1 {
				t.Fatalf("StreamCreationTimestamp %x: want CBOR tag 1 (%v)", []byte(s.StreamCreationTimestamp), err)
			}
		}
		names = append(names, out.StreamNames...)
		if !out.HasMoreStreams {
			break
		}
		next = out.NextToken
	}
	if fmt.Sprint(names) != "[cb-a cb-b cb-c]" {
		t.Fatalf("listed %v", names)
	}
	// Errors: the handler's (Limit 0) and the codec's (not CBOR), in CBOR.
	body, _ := cbor.Marshal(map[string]any{"Limit": 0})
	for _, tc := range []struct {
		body []byte
		want string
	}{{body, "ValidationException"}, {[]byte{0xbf, 0x61}, "SerializationException"}, {[]byte(`{"Limit":2}`), "SerializationException"}} {
		status, ct, b := kinesisPost(t, nil, url, http.MethodPost, ctCBOR, "ListStreams", tc.body)
		if typ, _ := awsErrorBody(t, ct, b); status != 400 || ct != ctCBOR || typ != tc.want {
			t.Errorf("body %x: %d %s %s, want 400 %s in CBOR", tc.body, status, ct, typ, tc.want)
		}
	}
}

func listStreamsRequest(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctJSON)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	return req
}

// h2cClient speaks HTTP/2 with prior knowledge over cleartext, as the AWS
// SDK for JavaScript v3 does.
func h2cClient() *http.Client {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: 10 * time.Second}
}

func TestKinesisH2C(t *testing.T) {
	p := braidtest.Start(t)
	createTopics(t, p, "h2-a")
	c := h2cClient()
	resp, err := c.Do(listStreamsRequest(t, "http://"+p.KinesisAddr+"/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("answered %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	// The AWS SDK over h2c, and HTTP/1.1 on the same listener.
	kc := kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + p.KinesisAddr), HTTPClient: c,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), RetryMaxAttempts: 1,
	})
	for _, client := range []*kinesis.Client{kc, p.Kinesis()} {
		out, err := client.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
		if err != nil || fmt.Sprint(out.StreamNames) != "[h2-a]" {
			t.Fatalf("ListStreams: %v %v", out, err)
		}
	}
	// /metrics counts each call under the protocol the server saw.
	m := scrapeMetrics(t, context.Background(), p)
	for proto, want := range map[string]float64{"HTTP/2.0": 2, "HTTP/1.1": 1} {
		if v := m.must(t, "braid_kinesis_requests_total", "operation", "ListStreams", "protocol", proto); v != want {
			t.Errorf("braid_kinesis_requests_total{operation=ListStreams,protocol=%s} = %v, want %v", proto, v, want)
		}
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "braid test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

func TestKinesisTLS(t *testing.T) {
	certPath, keyPath, pool := selfSigned(t)
	p := braidtest.Start(t, "--kinesis-tls-cert", certPath, "--kinesis-tls-key", keyPath)
	createTopics(t, p, "tls-a")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
	}}
	resp, err := c.Do(listStreamsRequest(t, "https://"+p.KinesisAddr+"/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.TLS == nil {
		t.Fatalf("answered %d over %s (TLS %v), want 200 over HTTP/2 with TLS", resp.StatusCode, resp.Proto, resp.TLS != nil)
	}
	kc := kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("https://" + p.KinesisAddr), HTTPClient: c,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), RetryMaxAttempts: 1,
	})
	out, err := kc.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
	if err != nil || fmt.Sprint(out.StreamNames) != "[tls-a]" {
		t.Fatalf("ListStreams over TLS: %v %v", out, err)
	}
	// Cleartext to the TLS listener is not served.
	if resp, err := http.DefaultClient.Do(listStreamsRequest(t, "http://"+p.KinesisAddr+"/")); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("cleartext request served by the TLS listener")
		}
	}
	// Only one of the two flags, or a key that is not a key: refused at
	// startup.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kinesis-tls-cert", certPath}, "give both or neither"},
		{[]string{"--kinesis-tls-cert", certPath, "--kinesis-tls-key", certPath}, "kinesis tls"},
	} {
		cmd := exec.Command(braidtest.Binary(t), append([]string{"serve", "--data-dir", t.TempDir(), "--kafka-addr", braidtest.FreeAddr(t),
			"--http-addr", "", "--kinesis-addr", braidtest.FreeAddr(t)}, tc.args...)...)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), tc.want) {
			t.Fatalf("%v: %v %s", tc.args, err, out)
		}
	}
}

// TestKinesisSigV4 configures credentials and checks the AWS SDK's signed
// requests: the right key passes, a wrong secret, an unknown key, no
// signature and a stale one are refused with AWS's error types.
func TestKinesisSigV4(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("# test keys\nAKIDBRAID1 secret-one\nAKIDBRAID2 secret-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A credentials file that cannot be used stops braid at startup.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("AKIDONLY\n"), 0o600)
	for _, f := range []string{bad, filepath.Join(t.TempDir(), "missing")} {
		cmd := exec.Command(braidtest.Binary(t), "serve", "--data-dir", t.TempDir(), "--kafka-addr", braidtest.FreeAddr(t),
			"--http-addr", "", "--kinesis-addr", braidtest.FreeAddr(t), "--kinesis-credentials", f)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "kinesis credentials") {
			t.Fatalf("--kinesis-credentials %s: %v %s", f, err, out)
		}
	}
	p := braidtest.Start(t, "--kinesis-credentials", creds)
	createTopics(t, p, "sig-a")
	if logs := p.Logs(); !strings.Contains(logs, "SigV4 signatures required") || strings.Contains(logs, "unsigned requests accepted") {
		t.Errorf("startup log does not say signatures are required:\n%s", logs)
	}
	client := func(cp aws.CredentialsProvider, h2c bool) *kinesis.Client {
		o := kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + p.KinesisAddr), Credentials: cp, RetryMaxAttempts: 1}
		if h2c {
			o.HTTPClient = h2cClient()
		}
		return kinesis.New(o)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cp   aws.CredentialsProvider
		h2c  bool
		want string
	}{
		{"first key", credentials.NewStaticCredentialsProvider("AKIDBRAID1", "secret-one", ""), false, ""},
		{"first key over h2c", credentials.NewStaticCredentialsProvider("AKIDBRAID1", "secret-one", ""), true, ""},
		{"second key, session token", credentials.NewStaticCredentialsProvider("AKIDBRAID2", "secret-two", "tok"), false, ""},
		{"wrong secret", credentials.NewStaticCredentialsProvider("AKIDBRAID1", "secret-two", ""), false, "InvalidSignatureException"},
		{"wrong secret over h2c", credentials.NewStaticCredentialsProvider("AKIDBRAID1", "secret-two", ""), true, "InvalidSignatureException"},
		{"unknown key", credentials.NewStaticCredentialsProvider("AKIDOTHER", "secret-one", ""), false, "UnrecognizedClientException"},
		{"unsigned", aws.AnonymousCredentials{}, false, "MissingAuthenticationTokenException"},
	} {
		out, err := client(tc.cp, tc.h2c).ListStreams(ctx, &kinesis.ListStreamsInput{})
		if awsErrorCode(err) != tc.want || (tc.want == "" && fmt.Sprint(out.StreamNames) != "[sig-a]") {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A signature made 6 minutes ago has expired; the same request signed
	// now passes.
	sign := func(at time.Time, ct string, body []byte) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.KinesisAddr+"/", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: "AKIDBRAID1", SecretAccessKey: "secret-one"},
			req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		return req
	}
	cborBody, _ := cbor.Marshal(map[string]any{"Limit": 5})
	tampered := sign(time.Now(), ctCBOR, cborBody)
	tampered.Body = io.NopCloser(bytes.NewReader(append(cborBody[:len(cborBody)-1:len(cborBody)-1], 6)))
	for _, tc := range []struct {
		req        *http.Request
		status     int
		typ, inMsg string
	}{
		{sign(time.Now().Add(-6*time.Minute), ctJSON, []byte(`{}`)), 400, "InvalidSignatureException", "Signature expired"},
		{sign(time.Now(), ctJSON, []byte(`{}`)), 200, "", ""},
		{sign(time.Now(), ctCBOR, cborBody), 200, "", ""},
		{tampered, 400, "InvalidSignatureException", "does not match"},
	} {
		resp, err := http.DefaultClient.Do(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.req.Header.Get("Content-Type") {
			t.Fatalf("%s signed at %s: %d %s %q", tc.req.Header.Get("Content-Type"), tc.req.Header.Get("X-Amz-Date"), resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		if tc.typ != "" {
			if typ, msg := awsErrorBody(t, resp.Header.Get("Content-Type"), b); typ != tc.typ || !strings.Contains(msg, tc.inMsg) {
				t.Fatalf("signed at %s: %s %q, want %s %q", tc.req.Header.Get("X-Amz-Date"), typ, msg, tc.typ, tc.inMsg)
			}
		}
	}
}

// TestKinesisUnsignedLog: without credentials the startup log says that
// unsigned requests are accepted.
func TestKinesisUnsignedLog(t *testing.T) {
	p := braidtest.Start(t)
	if !strings.Contains(p.Logs(), "unsigned requests accepted") {
		t.Fatalf("startup log does not say unsigned requests are accepted:\n%s", p.Logs())
	}
}

// TestKinesisHostileInput sends what a broken or hostile client might:
// every request gets an AWS-shaped error, nothing is written, and the
// server keeps serving.
func TestKinesisHostileInput(t *testing.T) {
	p := braidtest.Start(t)
	createTopics(t, p, "ho-a")
	adm := kadm.NewClient(p.Client())
	defer adm.Close()
	ctx := context.Background()
	ends := func() string {
		o, err := adm.ListEndOffsets(ctx, "ho-a")
		if err != nil {
			t.Fatal(err)
		}
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(o["ho-a"][0].Offset, td.Names())
	}
	before := ends()
	url := "http://" + p.KinesisAddr + "/"
	cborGarbage := []byte{0xbf, 0x64, 'D', 'a', 't', 'a', 0x5f}
	huge := append([]byte(`{"StreamName":"ho-a","PartitionKey":"k","Data":"`), bytes.Repeat([]byte("A"), 10<<20)...)
	huge = append(huge, `"}`...)
	// One byte over Kinesis' 1 MiB record limit, well under the request
	// limit.
	bigRecord := []byte(`{"StreamName":"ho-a","PartitionKey":"k","Data":"` + base64.StdEncoding.EncodeToString(make([]byte, 1<<20+1)) + `"}`)
	for _, tc := range []struct {
		name, method, ct, op string
		body                 []byte
		want                 string
	}{
		{"malformed JSON", "POST", ctJSON, "ListStreams", []byte(`{"Limit":`), "SerializationException"},
		{"JSON of the wrong shape", "POST", ctJSON, "ListStreams", []byte(`{"Limit":"ten"}`), "SerializationException"},
		{"JSON array", "POST", ctJSON, "ListStreams", []byte(`[1,2]`), "SerializationException"},
		{"malformed CBOR", "POST", ctCBOR, "ListStreams", cborGarbage, "SerializationException"},
		{"wrong content type", "POST", "text/plain", "ListStreams", []byte(`{}`), "SerializationException"},
		{"XML content type", "POST", "application/xml", "PutRecord", []byte(`<a/>`), "SerializationException"},
		{"unknown operation", "POST", ctJSON, "DropAllTables", []byte(`{}`), "UnknownOperationException"},
		{"missing target", "POST", ctJSON, "", []byte(`{}`), "UnknownOperationException"},
		{"other API version", "POST", ctJSON, "", []byte(`{}`), "UnknownOperationException"},
		{"GET", "GET", "", "ListStreams", nil, "AccessDeniedException"},
		{"oversized JSON put", "POST", ctJSON, "PutRecord", huge, "InvalidArgumentException"},
		{"malformed put", "POST", ctJSON, "PutRecord", []byte(`{"StreamName":"ho-a","PartitionKey":"k","Data":"not base64!"}`), ""},
		{"malformed CBOR put", "POST", ctCBOR, "PutRecords", cborGarbage, ""},
		{"malformed create", "POST", ctJSON, "CreateStream", []byte(`{"StreamName":"ho-b","ShardCount":"x"}`), ""},
		{"oversized record", "POST", ctJSON, "PutRecord", bigRecord, ""},
		{"oversized record in a batch", "POST", ctJSON, "PutRecords", []byte(`{"StreamName":"ho-a","Records":[{"PartitionKey":"k","Data":"aGk="},` + string(bigRecord) + `]}`), ""},
		{"forged iterator", "POST", ctJSON, "GetRecords", []byte(`{"ShardIterator":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`), ""},
	} {
		op := tc.op
		if tc.name == "other API version" {
			op = "" // set below
		}
		req, _ := http.NewRequest(tc.method, url, bytes.NewReader(tc.body))
		if tc.ct != "" {
			req.Header.Set("Content-Type", tc.ct)
		}
		if op != "" {
			req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
		}
		if tc.name == "other API version" {
			req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		typ, _ := awsErrorBody(t, resp.Header.Get("Content-Type"), b)
		// Writes refused before their operation exists on this build are
		// UnknownOperationException; with it, the operation's own refusal.
		if resp.StatusCode != 400 || typ == "" || (tc.want != "" && typ != tc.want) || resp.Header.Get("X-Amzn-ErrorType") != typ || len(resp.Header.Get("X-Amzn-RequestId")) != 36 {
			t.Errorf("%s: %d %s %q (request id %q), want 400 %s", tc.name, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b, resp.Header.Get("X-Amzn-RequestId"), tc.want)
		}
		// The server keeps serving.
		if _, err := p.Kinesis().ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
			t.Fatalf("after %s: %v", tc.name, err)
		}
	}
	if after := ends(); after != before {
		t.Fatalf("hostile requests changed the data: %s -> %s", before, after)
	}
}
