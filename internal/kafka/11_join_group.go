package kafka

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/group"
)

// JoinGroup v0-v9 (classic protocol). v4+ requires a known member id
// (KIP-394: the first join is answered MEMBER_ID_REQUIRED with one); v5+
// carries static membership: a static member rejoining a stable group
// with an empty member id keeps its assignment without a rebalance
// (KIP-345; v9 tells a rejoining leader to skip assigning). The answer
// waits until the rebalance completes, in the connection's completion
// queue.
func init() { register(11, 0, 9, handleJoinGroup) }

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func handleJoinGroup(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation, resp.MemberID = -1, req.MemberID
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	rebalance := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if req.Version >= 1 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
	jr := group.JoinRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: str(req.InstanceID),
		ClientID: c.client, ClientHost: "/" + host, ProtocolType: req.ProtocolType,
		SessionTimeout:     time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:   rebalance,
		RequireKnownMember: req.Version >= 4,
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	wait := c.s.groups.Join(jr)
	return nil, func() kmsg.Response {
		var r group.JoinResult
		select {
		case r = <-wait:
		case <-c.ctx.Done():
			// The member is gone with its connection; the rebalance
			// timeout will drop it.
			return nil
		}
		if r.MemberID != "" {
			resp.MemberID = r.MemberID
		}
		if r.Err == nil && r.Wait != 0 {
			ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
			r.Err = c.s.eng.Offsets().WaitDurable(ctx, r.Wait)
			cancel()
		}
		if r.Err != nil {
			resp.ErrorCode = errCode(r.Err)
			if errors.Is(r.Err, group.ErrInconsistentProtocol) || errors.Is(r.Err, group.ErrInvalidSessionTime) {
				resp.MemberID = req.MemberID
			}
			return resp
		}
		pt, proto := r.ProtocolType, r.Protocol
		resp.Generation, resp.ProtocolType, resp.Protocol, resp.LeaderID = r.Generation, &pt, &proto, r.LeaderID
		resp.SkipAssignment = r.SkipAssignment && req.Version >= 9
		for _, m := range r.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.ProtocolMetadata = m.MemberID, m.Metadata
			if m.InstanceID != "" {
				id := m.InstanceID
				rm.InstanceID = &id
			}
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}
}
