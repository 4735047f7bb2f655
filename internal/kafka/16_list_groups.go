package kafka

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups v0-v5. Until membership is served, the groups are those holding
// committed offsets, all in state Empty, of type classic.
func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if !matchesFilter(req.StatesFilter, "Empty") || !matchesFilter(req.TypesFilter, "classic") {
		return resp, nil
	}
	for _, name := range c.s.eng.Offsets().Groups() {
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = name, "consumer", "Empty", "classic"
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func matchesFilter(filter []string, v string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if strings.EqualFold(f, v) {
			return true
		}
	}
	return false
}
