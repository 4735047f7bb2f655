package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups v0-v5. A group with committed offsets is Empty (no members
// yet); an unknown group is Dead, as Kafka answers it.
func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	known := c.s.eng.Offsets().Groups()
	for _, name := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group, g.State = name, "Dead"
		switch {
		case name == "":
			g.ErrorCode = kerr.InvalidGroupID.Code
		case slices.Contains(known, name):
			g.State, g.ProtocolType = "Empty", "consumer"
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
