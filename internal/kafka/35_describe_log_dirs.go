package kafka

import (
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs v0-v4: one log directory (the data directory) with the
// bytes each shard keeps (its indexed batches, in the write-ahead log or in
// segment files), and (v4+) the filesystem's total and usable bytes.
func init() { register(35, 0, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = c.s.eng.Dir()
	var fs syscall.Statfs_t
	if syscall.Statfs(dir.Dir, &fs) == nil {
		dir.TotalBytes, dir.UsableBytes = int64(fs.Blocks)*fs.Bsize, int64(fs.Bavail)*fs.Bsize
	}
	add := func(name string, parts []int32) {
		st := c.s.eng.Stream(name)
		if st == nil {
			return
		}
		t := kmsg.NewDescribeLogDirsResponseDirTopic()
		t.Topic = name
		for _, p := range parts {
			if p < 0 || int(p) >= len(st.Shards) {
				continue
			}
			_, size, _ := st.Shards[p].Stats()
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = p, size
			t.Partitions = append(t.Partitions, rp)
		}
		dir.Topics = append(dir.Topics, t)
	}
	if req.Topics == nil { // every stream
		for name, st := range c.s.eng.Streams() {
			parts := make([]int32, len(st.Shards))
			for i := range parts {
				parts[i] = int32(i)
			}
			add(name, parts)
		}
	} else {
		for _, rt := range req.Topics {
			add(rt.Topic, rt.Partitions)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}
