package kafka

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups v0-v2: removes a group's committed offsets (durably).
func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	return nil, func() kmsg.Response {
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		known := c.s.eng.Offsets().Groups()
		for _, name := range req.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group = name
			switch {
			case name == "":
				g.ErrorCode = kerr.InvalidGroupID.Code
			case c.s.groups.Active(name):
				g.ErrorCode = kerr.NonEmptyGroup.Code
			case !slices.Contains(known, name):
				g.ErrorCode = kerr.GroupIDNotFound.Code
			default:
				g.ErrorCode = errCode(c.s.eng.Offsets().DeleteGroup(ctx, name))
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
}
