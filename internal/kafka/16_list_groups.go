package kafka

import (
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups v0-v5: groups with members or committed offsets, filtered by
// state (v4+) and type (v5+: classic or consumer).
func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	all := c.s.groups.List()
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d := all[name]
		typ := d.Type
		if typ == "" {
			typ = "classic"
		}
		if !matchesFilter(req.StatesFilter, d.State) || !matchesFilter(req.TypesFilter, typ) {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = name, d.ProtocolType, d.State, typ
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
