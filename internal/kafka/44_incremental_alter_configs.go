package kafka

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
)

// IncrementalAlterConfigs v0-v1: SET, DELETE, and APPEND/SUBTRACT for
// list-valued configs, on topics and on the broker (this node's id, or ""
// for the cluster-wide defaults). An unknown topic is reported before any
// config error, as Kafka does.
func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewIncrementalAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			err = c.alterTopicIncrementally(rr.ResourceName, rr.Configs, req.ValidateOnly)
		case kmsg.ConfigResourceTypeBroker:
			err = c.alterBrokerIncrementally(rr.ResourceName, rr.Configs, req.ValidateOnly)
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

func (c *conn) alterTopicIncrementally(topic string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig, validateOnly bool) error {
	st := c.s.eng.Stream(topic)
	if st == nil {
		return fmt.Errorf("%w: %q", catalog.ErrUnknownStream, topic)
	}
	defaults := c.s.eng.Defaults()
	set, err := incrementalChanges(ops, catalog.Specs, func(name string) string { return st.Configs.Get(name, defaults) })
	if err != nil {
		return err
	}
	return c.s.eng.SetConfigs(topic, set, false, validateOnly)
}

func (c *conn) alterBrokerIncrementally(name string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig, validateOnly bool) error {
	if err := c.checkBrokerResource(name); err != nil {
		return err
	}
	layers := c.s.eng.ConfigLayers()
	set, err := incrementalChanges(ops, catalog.BrokerSpecs, func(n string) string {
		if name == "" {
			return layers.Cluster[n]
		}
		return layers.Broker(n).Value
	})
	if err != nil {
		return err
	}
	return c.s.eng.SetBrokerConfigs(name == "", set, false, validateOnly)
}

// incrementalChanges turns the operations into the names to set (nil:
// delete). APPEND and SUBTRACT work on list configs, from current values.
func incrementalChanges(ops []kmsg.IncrementalAlterConfigsRequestResourceConfig, specs map[string]catalog.ConfigSpec, current func(string) string) (map[string]*string, error) {
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
			spec, ok := specs[op.Name]
			if !ok {
				return nil, fmt.Errorf("%w: unknown config %q", catalog.ErrInvalidConfig, op.Name)
			}
			if spec.Type != catalog.TypeList {
				return nil, fmt.Errorf("%w: %s is not a list config", catalog.ErrInvalidConfig, op.Name)
			}
			if op.Value == nil {
				return nil, fmt.Errorf("%w: %s needs a value", catalog.ErrInvalidConfig, op.Name)
			}
			cur := current(op.Name)
			if prev, ok := set[op.Name]; ok {
				cur = ""
				if prev != nil {
					cur = *prev
				}
			}
			items := listItems(cur)
			for _, v := range listItems(*op.Value) {
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
			return nil, fmt.Errorf("%w: unknown operation %d", kerr.InvalidRequest, op.Op)
		}
	}
	return set, nil
}

func listItems(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
