package pgcdc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/braidstream/braid/internal/connect"
)

// snapshotPosition is the position of a source in the middle of its
// initial snapshot. The snapshot cannot be resumed (PostgreSQL's exported
// snapshot ends with the connection), so Open, given it, starts the
// snapshot over with a new slot: the rows handed out before come again.
const snapshotPosition = "snapshot"

// snapshot reads the tables as of the slot's consistent point, in the
// transaction the slot was created in (USE_SNAPSHOT), on the replication
// connection, before replication starts. Rows are read as they are
// handed out, so a large table is never held in memory.
type snapshot struct {
	lsn   pglogrepl.LSN // the slot's consistent point
	at    time.Time
	next  int // the table to read after the current one
	mrr   *pgconn.MultiResultReader
	rr    *pgconn.ResultReader
	table table
	// life outlives Polls: the result reader watches it until it closes.
	life   context.Context
	cancel context.CancelFunc
}

// beginSnapshot creates the slot in a new repeatable-read transaction on
// the replication connection and keeps that transaction for the reads.
func (s *Source) beginSnapshot(ctx context.Context) error {
	if err := s.conn.Exec(ctx, "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ").Close(); err != nil {
		return fmt.Errorf("postgres-cdc: begin snapshot: %w", err)
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, s.conn, s.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "USE_SNAPSHOT"})
	if err != nil {
		return fmt.Errorf("postgres-cdc: create slot %s: %w", s.cfg.Slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("postgres-cdc: slot %s: consistent point %q: %w", s.cfg.Slot, res.ConsistentPoint, err)
	}
	if s.env.Logger != nil {
		s.env.Logger.Info("postgres-cdc: created replication slot, snapshot follows", "slot", s.cfg.Slot, "at", lsn)
	}
	life, cancel := context.WithCancel(context.Background())
	s.snap = &snapshot{lsn: lsn, at: time.Now(), life: life, cancel: cancel}
	return nil
}

// pollSnapshot hands out up to batch snapshot rows. After the last one it
// ends the snapshot transaction and starts replication at the consistent
// point, which becomes the position.
func (s *Source) pollSnapshot(ctx context.Context) ([]connect.Record, []byte, error) {
	sn := s.snap
	var recs []connect.Record
	for len(recs) < s.batch {
		if sn.rr == nil {
			if sn.next == len(s.tables) {
				if err := s.endSnapshot(ctx); err != nil {
					return nil, nil, err
				}
				return recs, EncodePosition(s.pos), nil
			}
			sn.table = s.tables[sn.next]
			sn.next++
			sn.mrr = s.conn.Exec(sn.life, "SELECT * FROM "+sn.table.ident().Sanitize())
			if !sn.mrr.NextResult() {
				err := sn.mrr.Close()
				return nil, nil, fmt.Errorf("postgres-cdc: snapshot of %s: %w", sn.table, err)
			}
			sn.rr = sn.mrr.ResultReader()
		}
		if !sn.rr.NextRow() {
			_, err := sn.rr.Close()
			if err == nil {
				err = sn.mrr.Close()
			}
			sn.rr, sn.mrr = nil, nil
			if err != nil {
				return nil, nil, fmt.Errorf("postgres-cdc: snapshot of %s: %w", sn.table, err)
			}
			continue
		}
		r, err := s.snapshotRecord(sn.rr.FieldDescriptions(), sn.rr.Values())
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, r)
	}
	return recs, []byte(snapshotPosition), nil
}

func (s *Source) snapshotRecord(fields []pgconn.FieldDescription, vals [][]byte) (connect.Record, error) {
	sn := s.snap
	after := []byte{'{'}
	for i, f := range fields {
		if i > 0 {
			after = append(after, ',')
		}
		after = appendString(after, f.Name)
		after = append(after, ':')
		after = appendText(after, f.DataTypeOID, vals[i])
	}
	after = append(after, '}')
	var key []byte
	if cols := s.keys[sn.table]; len(cols) > 0 {
		key = []byte{'{'}
		for k, name := range cols {
			if k > 0 {
				key = append(key, ',')
			}
			key = appendString(key, name)
			key = append(key, ':')
			v := []byte("null")
			for i, f := range fields {
				if f.Name == name {
					v = appendText(nil, f.DataTypeOID, vals[i])
				}
			}
			key = append(key, v...)
		}
		key = append(key, '}')
	}
	value, err := json.Marshal(event{
		Op:     "r",
		Before: json.RawMessage("null"),
		After:  json.RawMessage(after),
		Source: eventSource{
			LSN:        sn.lsn.String(),
			CommitTime: sn.at.UTC().Format(time.RFC3339Nano),
			Schema:     sn.table.schema,
			Table:      sn.table.name,
			Snapshot:   true,
		},
	})
	if err != nil {
		return connect.Record{}, fmt.Errorf("postgres-cdc: encode snapshot row: %w", err)
	}
	return connect.Record{
		Stream:    s.cfg.streamFor(sn.table.schema, sn.table.name),
		Timestamp: sn.at,
		Key:       key,
		Value:     value,
	}, nil
}

func (s *Source) endSnapshot(ctx context.Context) error {
	sn := s.snap
	sn.cancel()
	if err := s.conn.Exec(ctx, "COMMIT").Close(); err != nil {
		return fmt.Errorf("postgres-cdc: end snapshot: %w", err)
	}
	s.snap = nil
	s.start, s.pos = sn.lsn, sn.lsn
	s.confirmed = max(s.confirmed, sn.lsn)
	return s.replicate(ctx)
}

// closeSnapshot gives up a snapshot in progress (Close, a failed Open).
func (s *Source) closeSnapshot() {
	if s.snap != nil {
		s.snap.cancel()
		s.snap = nil
	}
}
