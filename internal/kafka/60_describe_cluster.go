package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster v0-v2. Only broker endpoints exist (endpoint type 1).
func init() { register(60, 0, 2, handleDescribeCluster) }

func handleDescribeCluster(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	resp.EndpointType = 1
	resp.ClusterID = c.s.eng.ClusterID()
	resp.ControllerID = c.s.opts.NodeID
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = c.s.opts.NodeID, c.s.opts.AdvertisedHost, c.s.opts.AdvertisedPort
	resp.Brokers = append(resp.Brokers, b)
	return resp, nil
}
