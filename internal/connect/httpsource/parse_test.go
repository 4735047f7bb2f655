package httpsource

import (
	"reflect"
	"testing"
	"time"
)

var parseSeeds = []string{
	`[{"key":"a","value":{"n": 1},"headers":{"h":"v"}},{"value":2,"stream":"other"}]`,
	"{\"value\":1}\n\n{\"value\":2}\r\n",
	`[{"value":"AAE=","value_encoding":"base64"}]`,
	`[]`, ``, "  \n",
	"{\"value\":1} {\"value\":2}\n",
	"{\"value\":\n1}\n",
	`[{"value":1}] x`,
	`[{"value":1}, null]`,
	`[{"value":1}, 7]`,
	`{"vlaue":1}`,
	`[{"value":1,"stream":"a b"}]`,
	`[{"value":"!!","value_encoding":"base64"}]`,
	`[{"value":1,"value_encoding":"hex"}]`,
	`"text"`, `[1, [2], {"a":3}]`, `null`,
}

// The one-decoder path and the item-by-item path accept the same bodies
// and read the same records from them.
func TestParsePathsAgree(t *testing.T) {
	for _, body := range parseSeeds {
		for _, mode := range []string{bodyRecords, bodyValues} {
			checkParsePaths(t, []byte(body), mode)
		}
	}
}

func FuzzParseBody(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, values bool) {
		mode := bodyRecords
		if values {
			mode = bodyValues
		}
		checkParsePaths(t, body, mode)
	})
}

func checkParsePaths(t *testing.T, body []byte, mode string) {
	t.Helper()
	now := time.Unix(1, 0)
	fast, ok := parseFast(body, mode, now)
	slow, err := parseItems(body, mode, now)
	if ok != (err == nil) {
		t.Fatalf("%s body %q: one decoder ok=%v, item by item err=%v", mode, body, ok, err)
	}
	if ok && len(fast)+len(slow) > 0 && !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%s body %q: records differ:\n%+v\n%+v", mode, body, fast, slow)
	}
	if _, err := parseBody(body, mode, now); (err == nil) != ok {
		t.Fatalf("%s body %q: parseBody err=%v, paths ok=%v", mode, body, err, ok)
	}
}
