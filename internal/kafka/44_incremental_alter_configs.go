package kafka

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
)

// IncrementalAlterConfigs v0-v1: SET, DELETE, and APPEND/SUBTRACT for the
// list-valued cleanup.policy.
func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewIncrementalAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		resp.Resources = append(resp.Resources, r)
		res := &resp.Resources[len(resp.Resources)-1]
		if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
			refuseNonTopic(&res.ErrorCode, &res.ErrorMessage)
			continue
		}
		st := c.s.eng.Stream(rr.ResourceName)
		if st == nil {
			res.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		set, err := incrementalChanges(st.Configs, c.s.eng.Defaults(), rr.Configs)
		if err == nil {
			err = c.s.eng.SetConfigs(rr.ResourceName, set, false, req.ValidateOnly)
		}
		if err != nil {
			res.ErrorCode, res.ErrorMessage = errCode(err), errMessage(err)
		}
	}
	return resp, nil
}

func incrementalChanges(cur, defaults catalog.Configs, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]*string, error) {
	set := map[string]*string{}
	for _, op := range ops {
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, fmt.Errorf("%w: SET %s needs a value", catalog.ErrInvalidConfig, op.Name)
			}
			set[op.Name] = op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			set[op.Name] = nil
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if op.Name != "cleanup.policy" {
				return nil, fmt.Errorf("%w: %s is not a list config", catalog.ErrInvalidConfig, op.Name)
			}
			if op.Value == nil {
				return nil, fmt.Errorf("%w: %s needs a value", catalog.ErrInvalidConfig, op.Name)
			}
			items := strings.Split(cur.Get(op.Name, defaults), ",")
			if prev, ok := set[op.Name]; ok && prev != nil {
				items = strings.Split(*prev, ",")
			}
			for _, v := range strings.Split(*op.Value, ",") {
				i := slices.Index(items, v)
				if op.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
					items = append(items, v)
				} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
					items = slices.Delete(items, i, i+1)
				}
			}
			joined := strings.Join(items, ",")
			set[op.Name] = &joined
		default:
			return nil, fmt.Errorf("%w: unknown operation %d", catalog.ErrInvalidConfig, op.Op)
		}
	}
	return set, nil
}
