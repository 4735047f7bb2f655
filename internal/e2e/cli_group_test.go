package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// The group CLI tests run `braid group list|describe|delete|reset-offsets`
// against a braidtest node whose groups are set up two ways: offsets
// committed by an admin client (a group with no members, state Empty), and
// a real kgo group member that has consumed part of a stream.

// cliGroupEntry is one element of `group list --format json`.
type cliGroupEntry struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

// cliGroupOffset is one element of `group describe --format json`'s offsets.
type cliGroupOffset struct {
	Stream    string `json:"stream"`
	Shard     int32  `json:"shard"`
	MemberID  string `json:"member_id"`
	Committed *int64 `json:"committed"`
	Start     *int64 `json:"start"`
	End       *int64 `json:"end"`
	Lag       *int64 `json:"lag"`
	Error     string `json:"error"`
}

func (o cliGroupOffset) String() string {
	return fmt.Sprintf("%s/%d committed=%s start=%s end=%s lag=%s member=%q error=%q", o.Stream, o.Shard,
		cliOptInt(o.Committed), cliOptInt(o.Start), cliOptInt(o.End), cliOptInt(o.Lag), o.MemberID, o.Error)
}

// cliGroupDesc is `group describe --format json`.
type cliGroupDesc struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol"`
	Members      []struct {
		MemberID   string `json:"member_id"`
		InstanceID string `json:"instance_id"`
		ClientID   string `json:"client_id"`
		Host       string `json:"host"`
		Assigned   []struct {
			Stream string  `json:"stream"`
			Shards []int32 `json:"shards"`
		} `json:"assigned"`
	} `json:"members"`
	Offsets  []cliGroupOffset `json:"offsets"`
	TotalLag int64            `json:"total_lag"`
}

// cliGroupReset is `group reset-offsets --format json`.
type cliGroupReset struct {
	Group     string `json:"group"`
	Stream    string `json:"stream"`
	To        string `json:"to"`
	DryRun    bool   `json:"dry_run"`
	Committed bool   `json:"committed"`
	NewGroup  bool   `json:"new_group"`
	Shards    []struct {
		Shard   int32  `json:"shard"`
		Old     *int64 `json:"old"`
		New     int64  `json:"new"`
		Clamped bool   `json:"clamped"`
	} `json:"shards"`
}

func (r cliGroupReset) plan() string {
	var parts []string
	for _, s := range r.Shards {
		c := ""
		if s.Clamped {
			c = " (clamped)"
		}
		parts = append(parts, fmt.Sprintf("%d: %s->%d%s", s.Shard, cliOptInt(s.Old), s.New, c))
	}
	return strings.Join(parts, ", ")
}

func cliGroupList(t testing.TB, ctx context.Context, p *braidtest.Proc, args ...string) []cliGroupEntry {
	t.Helper()
	r := cliOK(t, ctx, p, "", append([]string{"group", "list", "--format", "json"}, args...)...)
	var out []cliGroupEntry
	cliDecodeJSON(t, r, &out)
	return out
}

func cliGroupDescribe(t testing.TB, ctx context.Context, p *braidtest.Proc, group string) cliGroupDesc {
	t.Helper()
	r := cliOK(t, ctx, p, "", "group", "describe", group, "--format", "json")
	var d cliGroupDesc
	cliDecodeJSON(t, r, &d)
	if d.Group != group {
		t.Errorf("describe %s names group %q; %s", group, d.Group, r)
	}
	return d
}

func cliGroupResetJSON(t testing.TB, ctx context.Context, p *braidtest.Proc, args ...string) cliGroupReset {
	t.Helper()
	r := cliOK(t, ctx, p, "", append([]string{"group", "reset-offsets", "--format", "json"}, args...)...)
	var out cliGroupReset
	cliDecodeJSON(t, r, &out)
	return out
}

// cliGroupCommit commits offsets (shard -> offset) on stream for group the
// way an admin tool does: outside any generation.
func cliGroupCommit(t testing.TB, ctx context.Context, adm *kadm.Client, group, stream string, offsets map[int32]int64) {
	t.Helper()
	os := make(kadm.Offsets)
	for shard, at := range offsets {
		os.Add(kadm.Offset{Topic: stream, Partition: shard, At: at, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatalf("commit %v to group %s on %s: %v", offsets, group, stream, err)
	}
}

// cliGroupCommitted returns every committed offset of group as
// "stream/shard" -> offset.
func cliGroupCommitted(t testing.TB, ctx context.Context, adm *kadm.Client, group string) map[string]int64 {
	t.Helper()
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of group %s: %v", group, err)
	}
	out := map[string]int64{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Errorf("fetch offsets of group %s: %s/%d: %v", group, o.Topic, o.Partition, o.Err)
			return
		}
		out[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.At
	})
	return out
}

func cliGroupCheckCommitted(t testing.TB, ctx context.Context, adm *kadm.Client, group string, want map[string]int64) {
	t.Helper()
	got := cliGroupCommitted(t, ctx, adm, group)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("group %s has committed %v, want %v", group, got, want)
	}
}

// cliGroupMember is one kgo consumer-group member. Auto-commit is off, so
// the group's offsets are only what the test commits.
type cliGroupMember struct {
	cl    *kgo.Client
	recs  []*kgo.Record
	close func()
}

// cliGroupJoin starts a member of group consuming stream and returns once it
// has consumed all n records the stream holds and the group is Stable.
func cliGroupJoin(t testing.TB, ctx context.Context, p *braidtest.Proc, adm *kadm.Client, group, stream string, n int, opts ...kgo.Opt) *cliGroupMember {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(p.KafkaAddr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(stream),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200 * time.Millisecond), kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(300 * time.Millisecond), kgo.RetryTimeout(15 * time.Second),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("group member client: %v", err)
	}
	var once sync.Once
	m := &cliGroupMember{cl: cl, close: func() { once.Do(cl.Close) }}
	t.Cleanup(m.close)
	m.recs = pollN(t, ctx, cl, n)
	cliGroupWait(t, ctx, adm, group, "Stable", 1)
	return m
}

// record returns the consumed record at shard/offset.
func (m *cliGroupMember) record(t testing.TB, shard int32, offset int64) *kgo.Record {
	t.Helper()
	for _, r := range m.recs {
		if r.Partition == shard && r.Offset == offset {
			return r
		}
	}
	t.Fatalf("the member did not consume shard %d offset %d", shard, offset)
	return nil
}

// cliGroupWait waits until kadm describes group in state with n members.
func cliGroupWait(t testing.TB, ctx context.Context, adm *kadm.Client, group, state string, n int) {
	t.Helper()
	var last string
	for {
		ds, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			g := ds[group]
			if g.State == state && len(g.Members) == n {
				return
			}
			last = fmt.Sprintf("state %s with %d members", g.State, len(g.Members))
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			t.Fatalf("group %s never reached state %s with %d members; last: %s", group, state, n, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cliGroupCheckOffsets(t testing.TB, what string, got []cliGroupOffset, want []cliGroupOffset) {
	t.Helper()
	var g, w []string
	for _, o := range got {
		g = append(g, o.String())
	}
	for _, o := range want {
		w = append(w, o.String())
	}
	if !slices.Equal(g, w) {
		t.Errorf("%s offsets:\n got %s\nwant %s", what, strings.Join(g, "\n     "), strings.Join(w, "\n     "))
	}
}

func cliGroupPtr(v int64) *int64 { return &v }

// TestCLIGroupListDescribe covers `group list` and `group describe` for an
// admin-committed group without members and for a live kgo member: state,
// members, committed offsets and exact lag, in JSON and text.
func TestCLIGroupListDescribe(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 25*time.Second)
	adm := newAdmin(t, p)
	prod := newProducer(t, p)

	// cg-orders: shards of 10, 6 and 4 records.
	createStream(t, ctx, adm, "cg-orders", 3, nil)
	produce(t, ctx, prod, cliRecs("cg-orders", 0, 10)...)
	produce(t, ctx, prod, cliRecs("cg-orders", 1, 6)...)
	produce(t, ctx, prod, cliRecs("cg-orders", 2, 4)...)
	// cg-events: shard 0 holds 0..7; shard 1 holds 2..4 (0 and 1 deleted).
	createStream(t, ctx, adm, "cg-events", 2, nil)
	produce(t, ctx, prod, cliRecs("cg-events", 0, 8)...)
	produce(t, ctx, prod, cliRecs("cg-events", 1, 5)...)
	del := make(kadm.Offsets)
	del.Add(kadm.Offset{Topic: "cg-events", Partition: 1, At: 2})
	if rs, err := adm.DeleteRecords(ctx, del); err != nil || rs.Error() != nil {
		t.Fatalf("delete records of cg-events/1 below 2: %v / %v", err, rs.Error())
	}

	t.Run("list-empty", func(t *testing.T) {
		if got := cliGroupList(t, ctx, p); len(got) != 0 {
			t.Errorf("group list on a node without groups: %+v", got)
		}
		r := cliOK(t, ctx, p, "", "group", "list")
		if !slices.Equal(strings.Fields(r.stdout), []string{"NAME", "STATE", "PROTOCOL-TYPE"}) {
			t.Errorf("group list on a node without groups: want the header only; %s", r)
		}
	})

	// An admin commit: shard 0 is 6 records behind, shard 1 caught up,
	// shard 2 never committed: a group consumes whole streams, so its lag
	// there is every record the shard holds.
	cliGroupCommit(t, ctx, adm, "cg-simple", "cg-orders", map[int32]int64{0: 4, 1: 6})

	// A static member that consumed everything but committed only the
	// first five records of cg-events/0.
	live := cliGroupJoin(t, ctx, p, adm, "cg-live", "cg-events", 8+3,
		kgo.InstanceID("cg-live-1"), kgo.ClientID("cg-cli-consumer"))
	if err := live.cl.CommitRecords(ctx, live.record(t, 0, 4)); err != nil {
		t.Fatalf("member commit: %v", err)
	}

	t.Run("list", func(t *testing.T) {
		got := cliGroupList(t, ctx, p)
		want := []cliGroupEntry{{"cg-live", "Stable", "consumer"}, {"cg-simple", "Empty", "consumer"}}
		// Kafka reports an empty protocol type for a group that only ever
		// had admin commits; braid says "consumer". Either is accepted.
		if len(got) == 2 && got[1].ProtocolType == "" {
			want[1].ProtocolType = ""
		}
		if !slices.Equal(got, want) {
			t.Errorf("group list: %+v, want %+v", got, want)
		}
		for _, tc := range []struct {
			state []string
			want  []string
		}{
			{[]string{"--state", "Stable"}, []string{"cg-live"}},
			{[]string{"--state", "stable"}, []string{"cg-live"}},
			{[]string{"--state", "empty"}, []string{"cg-simple"}},
			{[]string{"--state", "Empty,Stable"}, []string{"cg-live", "cg-simple"}},
			{[]string{"--state", "Empty", "--state", "Stable"}, []string{"cg-live", "cg-simple"}},
			{[]string{"--state", "Dead"}, nil},
			{[]string{"--state", "PreparingRebalance"}, nil},
		} {
			var names []string
			for _, g := range cliGroupList(t, ctx, p, tc.state...) {
				names = append(names, g.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("group list %v: %v, want %v", tc.state, names, tc.want)
			}
		}

		r := cliOK(t, ctx, p, "", "group", "list")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != 3 || !slices.Equal(strings.Fields(lines[0]), []string{"NAME", "STATE", "PROTOCOL-TYPE"}) ||
			!slices.Equal(strings.Fields(lines[1])[:2], []string{"cg-live", "Stable"}) ||
			!slices.Equal(strings.Fields(lines[2])[:2], []string{"cg-simple", "Empty"}) {
			t.Errorf("group list text: want a header, then cg-live Stable and cg-simple Empty; %s", r)
		}
		if r2 := cliOK(t, ctx, p, "", "groups", "ls"); r2.stdout != r.stdout {
			t.Errorf("`groups ls` differs from `group list`:\n%s\n%s", r2.stdout, r.stdout)
		}
		cliFails(t, ctx, p, "", []string{`--state "Running"`, "unknown group state", "Stable"}, "group", "list", "--state", "Running")
	})

	t.Run("describe-empty", func(t *testing.T) {
		d := cliGroupDescribe(t, ctx, p, "cg-simple")
		if d.State != "Empty" || len(d.Members) != 0 || d.TotalLag != 10 {
			t.Errorf("describe cg-simple: state %s, %d members, total lag %d; want Empty, 0, 10", d.State, len(d.Members), d.TotalLag)
		}
		cliGroupCheckOffsets(t, "describe cg-simple", d.Offsets, []cliGroupOffset{
			{Stream: "cg-orders", Shard: 0, Committed: cliGroupPtr(4), Start: cliGroupPtr(0), End: cliGroupPtr(10), Lag: cliGroupPtr(6)},
			{Stream: "cg-orders", Shard: 1, Committed: cliGroupPtr(6), Start: cliGroupPtr(0), End: cliGroupPtr(6), Lag: cliGroupPtr(0)},
			{Stream: "cg-orders", Shard: 2, Committed: nil, Start: cliGroupPtr(0), End: cliGroupPtr(4), Lag: cliGroupPtr(4)},
		})

		r := cliOK(t, ctx, p, "", "group", "describe", "cg-simple")
		for _, want := range [][]string{
			{"GROUP", "cg-simple"},
			{"STATE", "Empty"},
			{"MEMBERS", "0"},
			{"TOTAL-LAG", "10"},
			{"STREAM", "SHARD", "COMMITTED", "END", "LAG", "MEMBER-ID"},
			{"cg-orders", "0", "4", "10", "6", "-"},
			{"cg-orders", "1", "6", "6", "0", "-"},
			{"cg-orders", "2", "-", "4", "4", "-"},
		} {
			if !cliHasRow(r.stdout, want) {
				t.Errorf("describe text lacks a row %v; %s", want, r)
			}
		}
		if strings.Contains(r.stdout, "MEMBER-ID  INSTANCE-ID") {
			t.Errorf("describe of a group without members prints a member table; %s", r)
		}
	})

	t.Run("describe-live", func(t *testing.T) {
		d := cliGroupDescribe(t, ctx, p, "cg-live")
		if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol == "" || len(d.Members) != 1 {
			t.Fatalf("describe cg-live: state %q, protocol type %q, protocol %q, %d members; want Stable, consumer, an assignor, 1 member",
				d.State, d.ProtocolType, d.Protocol, len(d.Members))
		}
		m := d.Members[0]
		if m.MemberID == "" || m.InstanceID != "cg-live-1" || m.ClientID != "cg-cli-consumer" || m.Host == "" ||
			len(m.Assigned) != 1 || m.Assigned[0].Stream != "cg-events" || !slices.Equal(m.Assigned[0].Shards, []int32{0, 1}) {
			t.Errorf("describe cg-live member: %+v; want an id, instance cg-live-1, client cg-cli-consumer, a host, cg-events shards 0 and 1", m)
		}
		// Shard 0: committed 5 of 8. Shard 1: nothing committed, so the
		// lag counts what the shard holds: end 5 - start 2.
		cliGroupCheckOffsets(t, "describe cg-live", d.Offsets, []cliGroupOffset{
			{Stream: "cg-events", Shard: 0, MemberID: m.MemberID, Committed: cliGroupPtr(5), Start: cliGroupPtr(0), End: cliGroupPtr(8), Lag: cliGroupPtr(3)},
			{Stream: "cg-events", Shard: 1, MemberID: m.MemberID, Committed: nil, Start: cliGroupPtr(2), End: cliGroupPtr(5), Lag: cliGroupPtr(3)},
		})
		if d.TotalLag != 6 {
			t.Errorf("describe cg-live: total lag %d, want 6", d.TotalLag)
		}

		r := cliOK(t, ctx, p, "", "group", "describe", "cg-live")
		for _, want := range [][]string{
			{"STATE", "Stable"},
			{"PROTOCOL-TYPE", "consumer"},
			{"PROTOCOL", d.Protocol},
			{"MEMBERS", "1"},
			{"TOTAL-LAG", "6"},
			{"MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNED"},
			{m.MemberID, "cg-live-1", "cg-cli-consumer", m.Host, "cg-events:0,1"},
			{"cg-events", "0", "5", "8", "3", m.MemberID},
			{"cg-events", "1", "-", "5", "3", m.MemberID},
		} {
			if !cliHasRow(r.stdout, want) {
				t.Errorf("describe text lacks a row %v; %s", want, r)
			}
		}
	})

	t.Run("describe-refusals", func(t *testing.T) {
		cliFails(t, ctx, p, "", []string{`group "cg-missing" does not exist`}, "group", "describe", "cg-missing")
		cliFails(t, ctx, p, "", []string{`group "cg-missing" does not exist`}, "group", "describe", "cg-missing", "--format", "json")
		cliFails(t, ctx, p, "", []string{"accepts 1 arg"}, "group", "describe")
		// Describing never creates a group.
		if got := cliGroupList(t, ctx, p); len(got) != 2 {
			t.Errorf("group list after describing a missing group: %+v", got)
		}
	})
}

// TestCLIGroupDelete covers `group delete`: an empty group goes, one with a
// member is refused until the member leaves, a missing one is an error, and
// one failure does not stop the other deletions.
func TestCLIGroupDelete(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 25*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "cg-del", 1, nil)
	produce(t, ctx, newProducer(t, p), cliRecs("cg-del", 0, 3)...)
	for _, g := range []string{"cg-del-a", "cg-del-b", "cg-del-c"} {
		cliGroupCommit(t, ctx, adm, g, "cg-del", map[int32]int64{0: 1})
	}
	live := cliGroupJoin(t, ctx, p, adm, "cg-del-live", "cg-del", 3)
	if err := live.cl.CommitRecords(ctx, live.record(t, 0, 1)); err != nil {
		t.Fatalf("member commit: %v", err)
	}

	names := func() []string {
		var out []string
		for _, g := range cliGroupList(t, ctx, p) {
			out = append(out, g.Name)
		}
		return out
	}

	// One empty group.
	r := cliOK(t, ctx, p, "", "group", "delete", "cg-del-a")
	if r.stdout != "deleted group \"cg-del-a\"\n" {
		t.Errorf("delete stdout %q", r.stdout)
	}
	cliGroupCheckCommitted(t, ctx, adm, "cg-del-a", map[string]int64{})
	cliFails(t, ctx, p, "", []string{`group "cg-del-a" does not exist`}, "group", "describe", "cg-del-a")

	// A mix: the empty one goes, the others fail, each with its reason.
	r = runCLI(t, ctx, "", nil, "group", "delete", "cg-del-b", "cg-del-live", "cg-del-missing", "--brokers", p.KafkaAddr)
	if r.code == 0 || r.stdout != "deleted group \"cg-del-b\"\n" {
		t.Errorf("delete of a mix: want a non-zero exit and only cg-del-b deleted; %s", r)
	}
	for _, want := range []string{`group "cg-del-live" still has members`, `group "cg-del-missing" does not exist`, "2 of 3 groups were not deleted"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("delete of a mix: stderr lacks %q; %s", want, r)
		}
	}
	if got := names(); !slices.Equal(got, []string{"cg-del-c", "cg-del-live"}) {
		t.Errorf("groups after the deletions: %v, want [cg-del-c cg-del-live]", got)
	}
	// The refused group is untouched.
	cliGroupCheckCommitted(t, ctx, adm, "cg-del-live", map[string]int64{"cg-del/0": 2})
	if d := cliGroupDescribe(t, ctx, p, "cg-del-live"); d.State != "Stable" || len(d.Members) != 1 {
		t.Errorf("cg-del-live after a refused delete: state %s, %d members", d.State, len(d.Members))
	}

	// JSON reports every group, failures included, and still exits 1.
	r = runCLI(t, ctx, "", nil, "group", "delete", "cg-del-c", "cg-del-live", "--format", "json", "--brokers", p.KafkaAddr)
	var results []struct {
		Group   string `json:"group"`
		Deleted bool   `json:"deleted"`
		Error   string `json:"error"`
	}
	cliDecodeJSON(t, r, &results)
	if r.code == 0 || len(results) != 2 ||
		results[0].Group != "cg-del-c" || !results[0].Deleted || results[0].Error != "" ||
		results[1].Group != "cg-del-live" || results[1].Deleted || !strings.Contains(results[1].Error, `group "cg-del-live" still has members`) {
		t.Errorf("delete --format json: %+v; %s", results, r)
	}
	if !strings.Contains(r.stderr, `group "cg-del-live" still has members`) {
		t.Errorf("delete --format json: the failure is not on stderr; %s", r)
	}

	cliFails(t, ctx, p, "", []string{`group "cg-del-missing" does not exist`}, "group", "delete", "cg-del-missing")
	cliFails(t, ctx, p, "", []string{"requires at least 1 arg"}, "group", "delete")

	// Once its member leaves, the group is Empty and can be deleted.
	live.close()
	cliGroupWait(t, ctx, adm, "cg-del-live", "Empty", 0)
	r = cliOK(t, ctx, p, "", "group", "delete", "cg-del-live", "--format", "json")
	cliDecodeJSON(t, r, &results)
	if len(results) != 1 || results[0].Group != "cg-del-live" || !results[0].Deleted {
		t.Errorf("delete after the member left: %+v", results)
	}
	if got := names(); len(got) != 0 {
		t.Errorf("groups left after deleting all: %v", got)
	}
	cliGroupCheckCommitted(t, ctx, adm, "cg-del-live", map[string]int64{})
}

// TestCLIGroupResetOffsets covers `group reset-offsets` to every kind of
// target, --shard, --dry-run, clamping, a new group, the refusal while the
// group has a member, and bad arguments; the committed offsets are checked
// with kadm after each step.
func TestCLIGroupResetOffsets(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 25*time.Second)
	adm := newAdmin(t, p)
	const stream, group = "cg-rs", "cg-rs-group"
	createStream(t, ctx, adm, stream, 2, nil)

	// Shard 0: 10 records a second apart, the first two deleted (start 2,
	// end 10). Shard 1: 4 records three seconds apart (start 0, end 4).
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: stream, Partition: 0, Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	for i := range 4 {
		recs = append(recs, &kgo.Record{Topic: stream, Partition: 1, Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(3*i) * time.Second)})
	}
	produce(t, ctx, newProducer(t, p), recs...)
	del := make(kadm.Offsets)
	del.Add(kadm.Offset{Topic: stream, Partition: 0, At: 2})
	if rs, err := adm.DeleteRecords(ctx, del); err != nil || rs.Error() != nil {
		t.Fatalf("delete records of %s/0 below 2: %v / %v", stream, err, rs.Error())
	}
	cliGroupCommit(t, ctx, adm, group, stream, map[int32]int64{0: 7, 1: 1})
	committed := func(s0, s1 int64) map[string]int64 {
		return map[string]int64{stream + "/0": s0, stream + "/1": s1}
	}
	reset := func(args ...string) cliGroupReset {
		t.Helper()
		return cliGroupResetJSON(t, ctx, p, append([]string{group, "--stream", stream}, args...)...)
	}
	checkPlan := func(what string, got cliGroupReset, wantPlan string, dryRun bool) {
		t.Helper()
		if got.plan() != wantPlan || got.DryRun != dryRun || got.Committed == dryRun || got.Group != group || got.Stream != stream || got.NewGroup {
			t.Errorf("%s: %+v (plan %s), want plan %s, dry run %v", what, got, got.plan(), wantPlan, dryRun)
		}
	}

	t.Run("dry-run", func(t *testing.T) {
		got := reset("--to", "earliest", "--dry-run")
		checkPlan("dry run to earliest", got, "0: 7->2, 1: 1->0", true)
		if got.To != "earliest" {
			t.Errorf("dry run: to %q", got.To)
		}
		r := cliOK(t, ctx, p, "", "group", "reset-offsets", group, "--stream", stream, "--to", "latest", "--dry-run")
		for _, want := range [][]string{{"STREAM", "SHARD", "OLD", "NEW"}, {stream, "0", "7", "10"}, {stream, "1", "1", "4"}} {
			if !cliHasRow(r.stdout, want) {
				t.Errorf("dry run text lacks a row %v; %s", want, r)
			}
		}
		if !strings.Contains(r.stdout, "dry run: nothing committed") {
			t.Errorf("dry run text does not say nothing was committed; %s", r)
		}
		cliGroupCheckCommitted(t, ctx, adm, group, committed(7, 1))
	})

	t.Run("earliest", func(t *testing.T) {
		r := cliOK(t, ctx, p, "", "group", "reset-offsets", group, "--stream", stream, "--to", "earliest")
		for _, want := range [][]string{{stream, "0", "7", "2"}, {stream, "1", "1", "0"}} {
			if !cliHasRow(r.stdout, want) {
				t.Errorf("reset text lacks a row %v; %s", want, r)
			}
		}
		if !strings.Contains(r.stdout, `reset 2 offsets of group "cg-rs-group" on stream "cg-rs" to earliest`) {
			t.Errorf("reset text lacks its summary; %s", r)
		}
		cliGroupCheckCommitted(t, ctx, adm, group, committed(2, 0))
		// The group's lag now counts every record held.
		if d := cliGroupDescribe(t, ctx, p, group); d.TotalLag != 8+4 {
			t.Errorf("describe after reset to earliest: total lag %d, want 12", d.TotalLag)
		}
	})

	t.Run("latest", func(t *testing.T) {
		checkPlan("latest", reset("--to", "latest"), "0: 2->10, 1: 0->4", false)
		cliGroupCheckCommitted(t, ctx, adm, group, committed(10, 4))
		if d := cliGroupDescribe(t, ctx, p, group); d.TotalLag != 0 {
			t.Errorf("describe after reset to latest: total lag %d, want 0", d.TotalLag)
		}
	})

	t.Run("offset", func(t *testing.T) {
		checkPlan("offset:5 on shard 0", reset("--to", "offset:5", "--shard", "0"), "0: 10->5", false)
		cliGroupCheckCommitted(t, ctx, adm, group, committed(5, 4))
		// Below the start: the start; past the end: the end.
		checkPlan("offset:0", reset("--to", "offset:0"), "0: 5->2 (clamped), 1: 4->0", false)
		cliGroupCheckCommitted(t, ctx, adm, group, committed(2, 0))
		checkPlan("offset:100 on shard 1", reset("--to", "offset:100", "--shard", "1"), "1: 0->4 (clamped)", false)
		cliGroupCheckCommitted(t, ctx, adm, group, committed(2, 4))
		r := cliOK(t, ctx, p, "", "group", "reset-offsets", group, "--stream", stream, "--to", "offset:3", "--shard", "1,0", "--shard", "1")
		for _, want := range [][]string{{stream, "0", "2", "3"}, {stream, "1", "4", "3"}} {
			if !cliHasRow(r.stdout, want) {
				t.Errorf("reset text lacks a row %v; %s", want, r)
			}
		}
		cliGroupCheckCommitted(t, ctx, adm, group, committed(3, 3))
	})

	t.Run("timestamp", func(t *testing.T) {
		ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
		// Shard 0's record 5 is at +5s; shard 1's first at or after +5s is
		// record 2 (+6s).
		got := reset("--to", fmt.Sprintf("timestamp:%d", ms(5*time.Second)))
		checkPlan("timestamp +5s", got, "0: 3->5, 1: 3->2", false)
		if got.To != fmt.Sprintf("timestamp:%d", ms(5*time.Second)) {
			t.Errorf("timestamp reset: to %q", got.To)
		}
		cliGroupCheckCommitted(t, ctx, adm, group, committed(5, 2))
		// RFC3339 with a fraction: +2.5s is shard 0's record 3 and shard
		// 1's record 1 (+3s).
		rfc := base.Add(2500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		got = reset("--to", "timestamp:"+rfc)
		checkPlan("timestamp "+rfc, got, "0: 5->3, 1: 2->1", false)
		if got.To != fmt.Sprintf("timestamp:%d", ms(2500*time.Millisecond)) {
			t.Errorf("RFC3339 reset: to %q, want the same time in ms", got.To)
		}
		cliGroupCheckCommitted(t, ctx, adm, group, committed(3, 1))
		// Before every record: the start of each shard (shard 0's first
		// two records are gone).
		checkPlan("timestamp before all", reset("--to", fmt.Sprintf("timestamp:%d", ms(-time.Minute))), "0: 3->2, 1: 1->0", false)
		cliGroupCheckCommitted(t, ctx, adm, group, committed(2, 0))
		// After every record: the end.
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		checkPlan("timestamp in the future", reset("--to", "timestamp:"+future), "0: 2->10, 1: 0->4", false)
		cliGroupCheckCommitted(t, ctx, adm, group, committed(10, 4))
	})

	t.Run("new-group", func(t *testing.T) {
		got := cliGroupResetJSON(t, ctx, p, "cg-rs-new", "--stream", stream, "--to", "earliest", "--shard", "1", "--dry-run")
		if !got.NewGroup || got.plan() != "1: <null>->0" || got.Committed {
			t.Errorf("dry run on a new group: %+v (plan %s)", got, got.plan())
		}
		cliGroupCheckCommitted(t, ctx, adm, "cg-rs-new", map[string]int64{})
		got = cliGroupResetJSON(t, ctx, p, "cg-rs-new", "--stream", stream, "--to", "latest", "--shard", "1")
		if !got.NewGroup || got.plan() != "1: <null>->4" || !got.Committed {
			t.Errorf("reset of a new group: %+v (plan %s)", got, got.plan())
		}
		cliGroupCheckCommitted(t, ctx, adm, "cg-rs-new", map[string]int64{stream + "/1": 4})
	})

	t.Run("refused-while-active", func(t *testing.T) {
		// A member resumes from the committed offsets: 4 records of shard
		// 0 and 1 of shard 1 are left to consume.
		cliGroupCommit(t, ctx, adm, group, stream, map[int32]int64{0: 6, 1: 3})
		m := cliGroupJoin(t, ctx, p, adm, group, stream, 4+1)
		for _, extra := range [][]string{nil, {"--dry-run"}, {"--format", "json"}} {
			args := append([]string{"group", "reset-offsets", group, "--stream", stream, "--to", "earliest"}, extra...)
			cliFails(t, ctx, p, "", []string{`group "cg-rs-group" has 1 active member`, "state Stable", "stop its consumers"}, args...)
		}
		cliGroupCheckCommitted(t, ctx, adm, group, committed(6, 3))

		m.close()
		cliGroupWait(t, ctx, adm, group, "Empty", 0)
		checkPlan("reset after the member left", reset("--to", "earliest"), "0: 6->2, 1: 3->0", false)
		cliGroupCheckCommitted(t, ctx, adm, group, committed(2, 0))
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			want []string
		}{
			{"missing-stream", []string{"--stream", "cg-nope", "--to", "earliest"}, []string{`stream "cg-nope" does not exist`}},
			{"missing-shard", []string{"--stream", stream, "--to", "earliest", "--shard", "2"}, []string{`stream "cg-rs" has no shard 2`, "2 shards"}},
			{"bad-shard", []string{"--stream", stream, "--to", "earliest", "--shard", "-1"}, []string{`"-1" is not a shard number`}},
			{"no-to", []string{"--stream", stream}, []string{`required flag(s) "to" not set`}},
			{"no-stream", []string{"--to", "latest"}, []string{`required flag(s) "stream" not set`}},
			{"bad-to", []string{"--stream", stream, "--to", "start"}, []string{`--to "start"`, "earliest, latest, timestamp:", "offset:<n>"}},
			{"bad-offset", []string{"--stream", stream, "--to", "offset:-3"}, []string{`--to "offset:-3"`, "0 or more"}},
			{"bad-offset-word", []string{"--stream", stream, "--to", "offset:ten"}, []string{`--to "offset:ten"`}},
			{"bad-timestamp", []string{"--stream", stream, "--to", "timestamp:yesterday"}, []string{`--to "timestamp:yesterday"`, "RFC3339"}},
			{"latest-with-arg", []string{"--stream", stream, "--to", "latest:5"}, []string{`--to "latest:5"`}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cliFails(t, ctx, p, "", tc.want, append([]string{"group", "reset-offsets", group}, tc.args...)...)
			})
		}
		cliFails(t, ctx, p, "", []string{"accepts 1 arg"}, "group", "reset-offsets", "--stream", stream, "--to", "latest")
		// Nothing above committed anything.
		cliGroupCheckCommitted(t, ctx, adm, group, committed(2, 0))
		groups := cliGroupList(t, ctx, p)
		sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
		if len(groups) != 2 || groups[0].Name != "cg-rs-group" || groups[1].Name != "cg-rs-new" {
			t.Errorf("groups after the refusals: %+v", groups)
		}
	})
}
