package group

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// offsetFrames joins offset frames as the fuzz input carries them: one
// frame per line.
func offsetFrames(cs ...change) []byte {
	var out [][]byte
	for _, c := range cs {
		b, err := json.Marshal(c)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return bytes.Join(out, []byte("\n"))
}

// FuzzOffsetsReplay replays garbage as the offset frames recovery finds in
// the WAL (one frame per line of the input), then checks the checkpoint
// encoding of the result: Replay and Restore return errors or apply, never
// panic, and Snapshot then Restore gives back the same committed and
// pending transactional offsets.
func FuzzOffsetsReplay(f *testing.F) {
	pid := int64(7)
	f.Add(offsetFrames(
		change{G: "g", Set: []entryJSON{{T: "t", P: 0, O: 10, E: 0, M: "meta", TS: 1700000000000}, {T: "t", P: 1, O: 3}}},
		change{G: "g", Del: []entryJSON{{T: "t", P: 1}}},
		change{G: "g2", Txn: &pid, Set: []entryJSON{{T: "u", P: 2, O: 5}}},
		change{G: "g2", Txn: &pid, End: "commit"},
		change{G: "g3", Txn: &pid, Set: []entryJSON{{T: "u", P: 0, O: 1}}},
	))
	f.Add(offsetFrames(change{G: "g", Set: []entryJSON{{T: "t", O: 1}}}, change{G: "g", All: true}))
	f.Add(offsetFrames(change{G: "g", Txn: &pid, Set: []entryJSON{{T: "t", O: 1}}}, change{G: "g", Txn: &pid, End: "abort"}))
	f.Fuzz(func(t *testing.T, in []byte) {
		o := NewOffsets()
		for _, frame := range bytes.Split(in, []byte("\n")) {
			o.Replay(frame)
		}
		for _, g := range o.Groups() {
			o.Fetch(g)
			o.Unstable(g)
		}
		snap := o.Snapshot()
		again := NewOffsets()
		if err := again.Restore(snap); err != nil {
			t.Fatalf("restore a snapshot just taken: %v\n%s", err, snap)
		}
		if !reflect.DeepEqual(again.groups, o.groups) || !reflect.DeepEqual(again.txn, o.txn) {
			t.Fatalf("state changed through a checkpoint:\n%v %v\n%v %v", o.groups, o.txn, again.groups, again.txn)
		}
		// The input read as a snapshot must not panic either.
		NewOffsets().Restore(in)
	})
}

// TestOffsetsSeedRoundTrip checks the first seed leaves state in both maps,
// so the fuzz target's comparison has something to compare.
func TestOffsetsSeedRoundTrip(t *testing.T) {
	pid := int64(7)
	o := NewOffsets()
	for _, frame := range bytes.Split(offsetFrames(
		change{G: "g", Set: []entryJSON{{T: "t", P: 0, O: 10, M: "meta"}}},
		change{G: "g3", Txn: &pid, Set: []entryJSON{{T: "u", P: 0, O: 1}}},
	), []byte("\n")) {
		if err := o.Replay(frame); err != nil {
			t.Fatal(err)
		}
	}
	again := NewOffsets()
	if err := again.Restore(o.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if len(again.groups["g"]) != 1 || len(again.txn["g3"][pid]) != 1 || !reflect.DeepEqual(again.groups, o.groups) || !reflect.DeepEqual(again.txn, o.txn) {
		t.Fatalf("round trip: %v %v", again.groups, again.txn)
	}
}
