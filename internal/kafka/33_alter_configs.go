package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs v0-v2: replaces a topic's whole set of explicit configs.
// Broker settings come from the server's own configuration and are refused.
func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
			refuseNonTopic(&r.ErrorCode, &r.ErrorMessage)
		} else {
			set := map[string]*string{}
			for _, cfg := range rr.Configs {
				set[cfg.Name] = cfg.Value
			}
			if err := c.s.eng.SetConfigs(rr.ResourceName, set, true, req.ValidateOnly); err != nil {
				r.ErrorCode, r.ErrorMessage = errCode(err), errMessage(err)
			}
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

func refuseNonTopic(code *int16, msg **string) {
	m := "only topic configs can be altered; broker settings come from the server's flags"
	*code, *msg = kerr.InvalidRequest.Code, &m
}
