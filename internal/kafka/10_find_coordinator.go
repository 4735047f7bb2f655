package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator v0-v6 (v4+ batches keys). A single node coordinates every
// group and transaction, so the answer is always this node. Coordinator
// types other than group (0) and transaction (1) are refused.
//
// Besides groups, librdkafka needs this key advertised before it will
// compress with lz4 (its feature detection dates lz4 to the broker version
// that introduced group coordination).
func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	code := int16(0)
	if req.CoordinatorType != 0 && req.CoordinatorType != 1 {
		code = kerr.InvalidRequest.Code
	}
	node, host, port := c.s.opts.NodeID, c.s.opts.AdvertisedHost, c.s.opts.AdvertisedPort
	if req.Version < 4 {
		resp.ErrorCode = code
		if code == 0 {
			resp.NodeID, resp.Host, resp.Port = node, host, port
		} else {
			resp.NodeID, resp.Port = -1, -1
		}
		return resp, nil
	}
	for _, key := range req.CoordinatorKeys {
		co := kmsg.NewFindCoordinatorResponseCoordinator()
		co.Key, co.ErrorCode = key, code
		if code == 0 {
			co.NodeID, co.Host, co.Port = node, host, port
		} else {
			co.NodeID, co.Port = -1, -1
		}
		resp.Coordinators = append(resp.Coordinators, co)
	}
	return resp, nil
}
