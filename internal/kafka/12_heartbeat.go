package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat v0-v4.
func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = errCode(c.s.groups.Heartbeat(req.Group, req.MemberID, str(req.InstanceID), req.Generation))
	return resp, nil
}
