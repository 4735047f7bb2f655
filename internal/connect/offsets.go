package connect

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ShardOffset is one shard's committed offset in the offsets API.
type ShardOffset struct {
	Stream string `json:"stream"`
	Shard  int32  `json:"shard"`
	Offset int64  `json:"offset"`
}

// Offsets is the answer of GET /v1/connectors/{name}/offsets.
type Offsets struct {
	Offsets []ShardOffset `json:"offsets"`
	// Position is a source's stored position, base64; null for sinks and
	// for a source with none.
	Position *string `json:"position"`
}

// OffsetReset is the body of POST /v1/connectors/{name}/offsets/reset:
// To ("earliest" or "latest") or explicit Offsets.
type OffsetReset struct {
	To      string        `json:"to,omitempty"`
	Offsets []ShardOffset `json:"offsets,omitempty"`
}

func (m *Manager) admin() (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(m.opts.KafkaAddr))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// Offsets reports a sink's committed group offsets or a source's position.
func (m *Manager) Offsets(ctx context.Context, name string) (Offsets, error) {
	c, err := m.get(name)
	if err != nil {
		return Offsets{}, err
	}
	c.mu.Lock()
	def := c.def
	c.mu.Unlock()
	if def == nil {
		return Offsets{}, fmt.Errorf("%w: %s: its file is corrupt", ErrState, name)
	}
	out := Offsets{Offsets: []ShardOffset{}}
	if m.opts.Types[def.Type].Kind() == "source" {
		pos, err := readPosition(ctx, m.opts.KafkaAddr, name)
		if err != nil {
			return out, err
		}
		if pos != nil {
			s := base64.StdEncoding.EncodeToString(pos)
			out.Position = &s
		}
		return out, nil
	}
	adm, done, err := m.admin()
	if err != nil {
		return out, err
	}
	defer done()
	offs, err := adm.FetchOffsets(ctx, GroupID(name))
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out, nil // nothing committed yet
	}
	if err != nil {
		return out, err
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			out.Offsets = append(out.Offsets, ShardOffset{Stream: o.Topic, Shard: o.Partition, Offset: o.At})
		}
	})
	slices.SortFunc(out.Offsets, func(a, b ShardOffset) int {
		if a.Stream != b.Stream {
			if a.Stream < b.Stream {
				return -1
			}
			return 1
		}
		return int(a.Shard - b.Shard)
	})
	return out, nil
}

// ResetOffsets moves a paused connector's progress: a sink's group offsets
// to the streams' start or end, or to given offsets; a source's position
// back to none ("earliest"). An exactly-once sink that keeps its progress
// in its target starts where the target says, whatever the group holds.
func (m *Manager) ResetOffsets(ctx context.Context, name string, req OffsetReset) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	def, paused := c.def, c.paused
	c.mu.Unlock()
	if def == nil {
		return fmt.Errorf("%w: %s: its file is corrupt", ErrState, name)
	}
	if !paused {
		return fmt.Errorf("%w: pause %s before resetting its offsets", ErrState, name)
	}
	if (req.To == "") == (len(req.Offsets) == 0) {
		return defErr("to", "give either to (earliest or latest) or offsets")
	}
	if req.To != "" && req.To != "earliest" && req.To != "latest" {
		return defErr("to", "%q is neither earliest nor latest", req.To)
	}
	source := m.opts.Types[def.Type].Kind() == "source"
	if source {
		if req.To != "earliest" {
			return defErr("to", "a source's position can only be reset to earliest (read its input from the start)")
		}
		return m.writePosition(ctx, name, nil)
	}
	adm, done, err := m.admin()
	if err != nil {
		return err
	}
	defer done()
	set := kadm.Offsets{}
	switch {
	case req.To != "":
		var lo kadm.ListedOffsets
		if req.To == "earliest" {
			lo, err = adm.ListStartOffsets(ctx, def.Streams...)
		} else {
			lo, err = adm.ListEndOffsets(ctx, def.Streams...)
		}
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return err
		}
		lo.Each(func(o kadm.ListedOffset) {
			if o.Partition >= 0 {
				set.AddOffset(o.Topic, o.Partition, o.Offset, -1)
			}
		})
	default:
		for i, o := range req.Offsets {
			if !slices.Contains(def.Streams, o.Stream) {
				return defErr(fmt.Sprintf("offsets[%d].stream", i), "%q is not a stream of %s", o.Stream, name)
			}
			if o.Shard < 0 || o.Offset < 0 {
				return defErr(fmt.Sprintf("offsets[%d]", i), "shard and offset must not be negative")
			}
			set.AddOffset(o.Stream, o.Shard, o.Offset, -1)
		}
	}
	resp, err := adm.CommitOffsets(ctx, GroupID(name), set)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	return nil
}

// writePosition stores a source's position (nil: none).
func (m *Manager) writePosition(ctx context.Context, name string, pos []byte) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(m.opts.KafkaAddr))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := ensureStream(ctx, kadm.NewClient(cl), OffsetsStream, map[string]*string{"cleanup.policy": ptr("compact")}); err != nil {
		return err
	}
	if pos == nil {
		pos = []byte{}
	}
	return cl.ProduceSync(ctx, &kgo.Record{Topic: OffsetsStream, Key: []byte(name), Value: pos}).FirstErr()
}

// forgetProgress removes a deleted connector's group or position.
func (m *Manager) forgetProgress(ctx context.Context, def *Definition) error {
	if m.opts.Types[def.Type].Kind() == "source" {
		return m.writePosition(ctx, def.Name, nil)
	}
	adm, done, err := m.admin()
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.DeleteGroup(ctx, GroupID(def.Name))
	if err == nil {
		err = resp.Err
	}
	return err
}
