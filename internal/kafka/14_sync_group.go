package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/group"
)

// SyncGroup v0-v5: the leader hands in every member's assignment; everyone
// waits for it.
func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	assignments := map[string][]byte{}
	for _, a := range req.GroupAssignment {
		assignments[a.MemberID] = a.MemberAssignment
	}
	wait := c.s.groups.Sync(req.Group, req.MemberID, str(req.InstanceID), req.Generation, assignments)
	return nil, func() kmsg.Response {
		var r group.SyncResult
		select {
		case r = <-wait:
		case <-c.ctx.Done():
			return nil
		}
		if r.Err == nil && r.Wait != 0 {
			// The assignment is durable before anyone acts on it.
			ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
			r.Err = c.s.eng.Offsets().WaitDurable(ctx, r.Wait)
			cancel()
		}
		if r.Err != nil {
			resp.ErrorCode = errCode(r.Err)
			return resp
		}
		pt, proto := r.ProtocolType, r.Protocol
		resp.ProtocolType, resp.Protocol, resp.MemberAssignment = &pt, &proto, r.Assignment
		return resp
	}
}
