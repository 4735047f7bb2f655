package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/group"
)

// LeaveGroup v0-v5 (v3+ removes several members, by member or instance id).
func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Version < 3 {
		errs := c.s.groups.Leave(req.Group, []group.LeaveMember{{MemberID: req.MemberID}})
		resp.ErrorCode = errCode(errs[0])
		return resp, nil
	}
	var leaving []group.LeaveMember
	for _, m := range req.Members {
		leaving = append(leaving, group.LeaveMember{MemberID: m.MemberID, InstanceID: str(m.InstanceID)})
	}
	errs := c.s.groups.Leave(req.Group, leaving)
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, m.InstanceID, errCode(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
