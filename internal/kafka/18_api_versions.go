package kafka

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions v0-v4. v3+ is flexible; an unknown version is answered in v0
// with UNSUPPORTED_VERSION (KIP-511), see conn.handle.
const apiVersionsKey = 18

func init() { register(apiVersionsKey, 0, 4, handleApiVersions) }

func handleApiVersions(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	return apiVersionsResponse(0), nil
}

func apiVersionsResponse(code int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = code
	keys := make([]int, 0, len(handlers))
	for k := range handlers {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	for _, k := range keys {
		h := handlers[int16(k)]
		v := kmsg.NewApiVersionsResponseApiKey()
		v.ApiKey, v.MinVersion, v.MaxVersion = int16(k), h.min, h.max
		resp.ApiKeys = append(resp.ApiKeys, v)
	}
	// KIP-584 features (v3+ carries them): transaction.version 2 is
	// KIP-890 part 2 (EndTxn v5, Produce v12, TxnOffsetCommit v5).
	sf := kmsg.NewApiVersionsResponseSupportedFeature()
	sf.Name, sf.MinVersion, sf.MaxVersion = "transaction.version", 0, 2
	resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
	ff := kmsg.NewApiVersionsResponseFinalizedFeature()
	ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "transaction.version", 2, 2
	resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
	resp.FinalizedFeaturesEpoch = 1
	return resp
}
