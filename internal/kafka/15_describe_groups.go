package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups v0-v5: members with their metadata and assignments; a
// group with only committed offsets is Empty; an unknown group is Dead, as
// Kafka answers it.
func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = name
		if name == "" {
			g.ErrorCode, g.State = kerr.InvalidGroupID.Code, "Dead"
			resp.Groups = append(resp.Groups, g)
			continue
		}
		d, _ := c.s.groups.Describe(name)
		g.State, g.ProtocolType, g.Protocol = d.State, d.ProtocolType, d.Protocol
		for _, m := range d.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.ClientID, rm.ClientHost = m.MemberID, m.ClientID, m.ClientHost
			rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
			if m.InstanceID != "" {
				id := m.InstanceID
				rm.InstanceID = &id
			}
			g.Members = append(g.Members, rm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
