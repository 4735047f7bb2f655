// Command s3server is the S3-compatible server Braid's s3-sink tests run
// against: gofakes3 over a bbolt file (objects survive a restart), behind
// a Signature Version 4 check so a wrong access key or secret is refused
// as S3 refuses it. It is a test tool, not part of braid; its own module
// keeps gofakes3's dependencies out of braid's go.mod.
//
//	s3server -addr 127.0.0.1:9000 -db /tmp/s3.db -access-key K -secret-key S -bucket b
//
// It prints "listening on ADDR" once it accepts connections.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	db := flag.String("db", "s3.db", "bbolt file holding the buckets and objects")
	accessKey := flag.String("access-key", "braid", "the one access key accepted")
	secretKey := flag.String("secret-key", "braid-secret", "its secret key")
	buckets := flag.String("bucket", "", "comma-separated buckets to create at start")
	flag.Parse()

	backend, err := s3bolt.NewFile(*db)
	if err != nil {
		log.Fatalf("s3server: %v", err)
	}
	for _, b := range strings.Split(*buckets, ",") {
		if b == "" {
			continue
		}
		if err := backend.CreateBucket(b); err != nil && !gofakes3.IsAlreadyExists(err) {
			log.Fatalf("s3server: create bucket %s: %v", b, err)
		}
	}
	fake := gofakes3.New(backend, gofakes3.WithoutVersioning())
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("s3server: %v", err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	h := &sigV4{access: *accessKey, secret: *secretKey, next: &readsApart{next: fake.Server()}}
	log.Fatal(http.Serve(ln, h))
}

// readsApart keeps writes out while a read's answer is being written.
// gofakes3's bbolt backend hands back an object's bytes still pointing into
// bbolt's memory map after its read transaction has ended (its BSON
// decoder does not copy), and a write that grows the file remaps it: the
// read then faults and the whole server dies ("unexpected fault address",
// seen once in CI as a refused connection). Reads hold the lock shared
// until their answer is out, writes hold it alone.
type readsApart struct {
	mu   sync.RWMutex
	next http.Handler
}

func (h *readsApart) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		h.mu.RLock()
		defer h.mu.RUnlock()
	} else {
		h.mu.Lock()
		defer h.mu.Unlock()
	}
	h.next.ServeHTTP(w, r)
}

// sigV4 refuses a request whose Authorization header is missing, names
// another access key, or carries a signature the secret does not give.
// The payload hash is taken from X-Amz-Content-Sha256 as signed (gofakes3
// checks the body's MD5 itself).
type sigV4 struct {
	access, secret string
	next           http.Handler
}

func (s *sigV4) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code, msg := s.check(r); code != "" {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
		return
	}
	s.next.ServeHTTP(w, r)
}

func (s *sigV4) check(r *http.Request) (code, msg string) {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "AccessDenied", "signature version 4 required"
	}
	fields := map[string]string{}
	for _, part := range strings.Split(auth[len(algo):], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 {
		return "AuthorizationHeaderMalformed", "bad Credential"
	}
	if scope[0] != s.access {
		return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	canon.WriteString(r.URL.EscapedPath() + "\n")
	canon.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, h := range signed {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = fmt.Sprint(r.ContentLength)
		default:
			v = strings.Join(r.Header.Values(h), ",")
		}
		canon.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n")
	canon.WriteString(r.Header.Get("X-Amz-Content-Sha256"))
	sum := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" +
		strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + s.secret)
	for _, p := range scope[1:] {
		key = hmacSHA256(key, p)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}

func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			parts = append(parts, uriEncode(k)+"="+uriEncode(v))
		}
	}
	return strings.Join(parts, "&")
}

// uriEncode is SigV4's encoding: unreserved characters stay, the rest
// become %XX in upper case.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
