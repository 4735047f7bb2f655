package kafka

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs v0-v2: replaces a topic's whole set of explicit configs, or
// the whole set of dynamic broker configs of this node (resource name: its
// id) or of the cluster (resource name "").
func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		set := map[string]*string{}
		for _, cfg := range rr.Configs {
			set[cfg.Name] = cfg.Value
		}
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			err = c.s.eng.SetConfigs(rr.ResourceName, set, true, req.ValidateOnly)
		case kmsg.ConfigResourceTypeBroker:
			if err = c.checkBrokerResource(rr.ResourceName); err == nil {
				for k, v := range set {
					if v == nil {
						err = fmt.Errorf("%w: %s has no value", kerr.InvalidRequest, k)
					}
				}
			}
			if err == nil {
				err = c.s.eng.SetBrokerConfigs(rr.ResourceName == "", set, true, req.ValidateOnly)
			}
		default:
			err = errNotTopicOrBroker
		}
		if err != nil {
			r.ErrorCode, r.ErrorMessage = errCode(err), errMessage(err)
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

var errNotTopicOrBroker = fmt.Errorf("%w: Braid has topic and broker configs only", kerr.InvalidRequest)

// checkBrokerResource accepts "" (the cluster-wide defaults) and this
// node's id.
func (c *conn) checkBrokerResource(name string) error {
	if name != "" && name != strconv.Itoa(int(c.s.opts.NodeID)) {
		return fmt.Errorf("%w: broker %q is not this node (%d)", kerr.InvalidRequest, name, c.s.opts.NodeID)
	}
	return nil
}
