package pgcdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/connect/pgurl"
)

// Type is the postgres-cdc connector type.
var Type = connect.Type{
	Name:        "postgres-cdc",
	ExactlyOnce: true,
	Doc:         "streams a PostgreSQL table's inserts, updates and deletes (logical replication, pgoutput)",
	NewSource: func(env connect.Env, config json.RawMessage) (connect.Source, error) {
		return New(env, config)
	},
}

const (
	// pollWait is how long Poll waits for a first transaction.
	pollWait = time.Second
	// linger is how long Poll waits for more once it has a transaction.
	linger = 20 * time.Millisecond
	// maxPollRecords ends a Poll early (whole transactions still: the one
	// that crosses it is handed out whole).
	maxPollRecords = 10000
	// statusInterval: PostgreSQL drops a replication connection that is
	// silent for wal_sender_timeout (60 s by default).
	statusInterval = 10 * time.Second
)

// Source is a postgres-cdc source. Use it through connect.Source.
type Source struct {
	cfg    Config
	tables []table
	env    connect.Env
	// wait is how long Poll waits for a first transaction (pollWait; tests
	// shorten it to end Polls in the middle of a transaction).
	wait time.Duration
	// batch ends a Poll early (maxPollRecords; tests lower it).
	batch int
	snap  *snapshot // the initial snapshot, while it is handed out

	mu    sync.Mutex
	conn  *pgconn.PgConn
	start pglogrepl.LSN // transactions ending at or before it were handed out before
	// pos is where everything handed out ends (see doc.go).
	pos pglogrepl.LSN
	// confirmed is the position Braid has durably; sent to the server.
	confirmed  pglogrepl.LSN
	lastStatus time.Time

	keys map[table][]string // primary key columns
	rels map[uint32]*pglogrepl.RelationMessage
	// The transaction being received, and the whole ones not handed out.
	open      bool
	begin     *pglogrepl.BeginMessage
	cur       []connect.Record
	ready     []connect.Record
	readyEnd  pglogrepl.LSN
	idleAfter pglogrepl.LSN // keepalive position seen with no transaction open
}

// New checks the config; it does not connect yet (Open does).
func New(env connect.Env, raw json.RawMessage) (*Source, error) {
	if env.Name == "" {
		return nil, errors.New("postgres-cdc: connector name is required")
	}
	cfg, tables, err := parseConfig(env.Name, raw)
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, tables: tables, env: env, wait: pollWait, batch: maxPollRecords}, nil
}

// EncodePosition and DecodePosition are the position's format: the LSN
// in PostgreSQL's text form.
func EncodePosition(lsn pglogrepl.LSN) []byte { return []byte(lsn.String()) }

func DecodePosition(pos []byte) (pglogrepl.LSN, error) {
	lsn, err := pglogrepl.ParseLSN(string(pos))
	if err != nil {
		return 0, fmt.Errorf("postgres-cdc: position %q: %w", pos, err)
	}
	return lsn, nil
}

// Open prepares the publication and the slot and starts replication after
// pos.
func (s *Source) Open(ctx context.Context, pos []byte) error {
	_ = s.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.startReplication(ctx, pos)
	if err != nil && s.conn != nil {
		s.closeSnapshot()
		_ = s.conn.Close(context.Background())
		s.conn = nil
	}
	return err
}

func (s *Source) startReplication(ctx context.Context, pos []byte) error {
	s.start, s.pos, s.confirmed = 0, 0, 0
	snap := s.cfg.Snapshot == "initial" && (pos == nil || string(pos) == snapshotPosition)
	if pos != nil && string(pos) != snapshotPosition {
		lsn, err := DecodePosition(pos)
		if err != nil {
			return err
		}
		s.start = lsn
	}
	slotExists, slotConfirmed, err := s.prepare(ctx, snap)
	if err != nil {
		return err
	}
	pcfg, err := pgconn.ParseConfig(s.cfg.URL)
	if err != nil {
		return fmt.Errorf("postgres-cdc: url: %s", pgurl.RedactErr(err, s.cfg.URL))
	}
	pcfg.RuntimeParams["replication"] = "database"
	if pcfg.RuntimeParams["application_name"] == "" {
		pcfg.RuntimeParams["application_name"] = pgurl.ApplicationName(s.env.Name)
	}
	conn, err := pgconn.ConnectConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("postgres-cdc: replication connection to %s: %s", pgurl.Redacted(s.cfg.URL), pgurl.RedactErr(err, s.cfg.URL))
	}
	s.conn = conn
	s.rels = map[uint32]*pglogrepl.RelationMessage{}
	s.open, s.cur, s.ready, s.readyEnd, s.idleAfter = false, nil, nil, 0, 0
	if snap {
		return s.beginSnapshot(ctx)
	}
	if !slotExists {
		res, err := pglogrepl.CreateReplicationSlot(ctx, conn, s.cfg.Slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication})
		if err != nil {
			return fmt.Errorf("postgres-cdc: create slot %s: %w", s.cfg.Slot, err)
		}
		if s.env.Logger != nil {
			s.env.Logger.Info("postgres-cdc: created replication slot", "slot", s.cfg.Slot, "at", res.ConsistentPoint)
		}
		slotConfirmed, _ = pglogrepl.ParseLSN(res.ConsistentPoint)
	}
	// Never confirm less than the slot already has.
	s.confirmed = max(s.start, slotConfirmed)
	s.pos = s.start
	return s.replicate(ctx)
}

// replicate starts replication at s.start (0: the slot's confirmed
// position).
func (s *Source) replicate(ctx context.Context) error {
	err := pglogrepl.StartReplication(ctx, s.conn, s.cfg.Slot, s.start, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + s.cfg.Publication + "'"},
	})
	if err != nil {
		return fmt.Errorf("postgres-cdc: start replication on slot %s at %s: %w", s.cfg.Slot, s.start, err)
	}
	s.lastStatus = time.Now()
	return nil
}

// prepare checks the server and the tables, reads the primary keys, makes
// sure of the publication and says whether the slot exists (and its
// confirmed position), on an ordinary connection. dropSlot: a snapshot
// follows, with a new slot.
func (s *Source) prepare(ctx context.Context, dropSlot bool) (bool, pglogrepl.LSN, error) {
	pcfg, err := pgx.ParseConfig(s.cfg.URL)
	if err != nil {
		return false, 0, fmt.Errorf("postgres-cdc: url: %s", pgurl.RedactErr(err, s.cfg.URL))
	}
	if pcfg.RuntimeParams["application_name"] == "" {
		pcfg.RuntimeParams["application_name"] = pgurl.ApplicationName(s.env.Name)
	}
	db, err := pgx.ConnectConfig(ctx, pcfg)
	if err != nil {
		return false, 0, fmt.Errorf("postgres-cdc: connect to %s: %s", pgurl.Redacted(s.cfg.URL), pgurl.RedactErr(err, s.cfg.URL))
	}
	defer func() { _ = db.Close(context.Background()) }()
	var walLevel string
	if err := db.QueryRow(ctx, "show wal_level").Scan(&walLevel); err != nil {
		return false, 0, fmt.Errorf("postgres-cdc: %w", err)
	}
	if walLevel != "logical" {
		return false, 0, fmt.Errorf("postgres-cdc: the server's wal_level is %s; logical replication needs wal_level = logical (and a restart)", walLevel)
	}
	s.keys = map[table][]string{}
	for _, t := range s.tables {
		var exists bool
		if err := db.QueryRow(ctx, "select to_regclass($1) is not null", t.ident().Sanitize()).Scan(&exists); err != nil {
			return false, 0, fmt.Errorf("postgres-cdc: table %s: %w", t, err)
		}
		if !exists {
			return false, 0, fmt.Errorf("postgres-cdc: table %s does not exist", t)
		}
		rows, err := db.Query(ctx, `select a.attname::text from pg_index i
			join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
			where i.indrelid = to_regclass($1) and i.indisprimary
			order by array_position(i.indkey::int2[], a.attnum)`, t.ident().Sanitize())
		if err != nil {
			return false, 0, fmt.Errorf("postgres-cdc: primary key of %s: %w", t, err)
		}
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return false, 0, fmt.Errorf("postgres-cdc: primary key of %s: %w", t, err)
		}
		s.keys[t] = cols
	}
	if err := s.ensurePublication(ctx, db); err != nil {
		return false, 0, err
	}
	var plugin string
	var confirmed *string
	err = db.QueryRow(ctx, `select plugin, confirmed_flush_lsn::text from pg_replication_slots
		where slot_name = $1 and database = current_database()`, s.cfg.Slot).Scan(&plugin, &confirmed)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("postgres-cdc: slot %s: %w", s.cfg.Slot, err)
	}
	if dropSlot {
		if _, err := db.Exec(ctx, "select pg_drop_replication_slot($1)", s.cfg.Slot); err != nil {
			return false, 0, fmt.Errorf("postgres-cdc: drop slot %s to take a new snapshot: %w", s.cfg.Slot, err)
		}
		return false, 0, nil
	}
	if plugin != "pgoutput" {
		return false, 0, fmt.Errorf("postgres-cdc: slot %s uses the %s plugin; postgres-cdc needs pgoutput", s.cfg.Slot, plugin)
	}
	var lsn pglogrepl.LSN
	if confirmed != nil {
		lsn, _ = pglogrepl.ParseLSN(*confirmed)
	}
	return true, lsn, nil
}

func (s *Source) ensurePublication(ctx context.Context, db *pgx.Conn) error {
	pub := pgx.Identifier{s.cfg.Publication}.Sanitize()
	var exists bool
	if err := db.QueryRow(ctx, "select exists (select 1 from pg_publication where pubname = $1)", s.cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("postgres-cdc: publication %s: %w", s.cfg.Publication, err)
	}
	if !exists {
		list := ""
		for i, t := range s.tables {
			if i > 0 {
				list += ", "
			}
			list += t.ident().Sanitize()
		}
		if _, err := db.Exec(ctx, "create publication "+pub+" for table "+list); err != nil {
			return fmt.Errorf("postgres-cdc: create publication %s: %w", s.cfg.Publication, err)
		}
		return nil
	}
	for _, t := range s.tables {
		var in bool
		if err := db.QueryRow(ctx, `select exists (select 1 from pg_publication_tables
			where pubname = $1 and schemaname = $2 and tablename = $3)`, s.cfg.Publication, t.schema, t.name).Scan(&in); err != nil {
			return fmt.Errorf("postgres-cdc: publication %s: %w", s.cfg.Publication, err)
		}
		if !in {
			if _, err := db.Exec(ctx, "alter publication "+pub+" add table "+t.ident().Sanitize()); err != nil {
				return fmt.Errorf("postgres-cdc: add %s to publication %s: %w", t, s.cfg.Publication, err)
			}
		}
	}
	return nil
}

// Poll returns the changes of the whole transactions received, in commit
// order, and the position after them.
func (s *Source) Poll(ctx context.Context) ([]connect.Record, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil, nil, errors.New("postgres-cdc: Poll before Open")
	}
	if s.snap != nil {
		return s.pollSnapshot(ctx)
	}
	deadline := time.Now().Add(s.wait)
	for len(s.ready) < s.batch {
		wait := deadline
		if len(s.ready) > 0 {
			wait = time.Now().Add(linger)
		}
		if time.Since(s.lastStatus) > statusInterval {
			if err := s.sendStatus(ctx); err != nil {
				return nil, nil, err
			}
		}
		rctx, cancel := context.WithDeadline(ctx, wait)
		msg, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				if len(s.ready) > 0 || !time.Now().Before(deadline) {
					break
				}
				continue
			}
			return nil, nil, fmt.Errorf("postgres-cdc: receive: %w", err)
		}
		if err := s.handle(ctx, msg); err != nil {
			return nil, nil, err
		}
	}
	recs := s.ready
	s.ready = nil
	if s.readyEnd > s.pos {
		s.pos = s.readyEnd
	}
	if !s.open && len(recs) == 0 && s.idleAfter > s.pos {
		s.pos = s.idleAfter
	}
	if s.pos == 0 {
		return recs, nil, nil
	}
	return recs, EncodePosition(s.pos), nil
}

func (s *Source) handle(ctx context.Context, msg pgproto3.BackendMessage) error {
	switch msg := msg.(type) {
	case *pgproto3.CopyData:
		if len(msg.Data) == 0 {
			return nil
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return fmt.Errorf("postgres-cdc: %w", err)
			}
			if !s.open && len(s.ready) == 0 && ka.ServerWALEnd > s.idleAfter {
				// Every transaction that ends before this point was sent.
				s.idleAfter = ka.ServerWALEnd
			}
			if ka.ReplyRequested {
				return s.sendStatus(ctx)
			}
		case pglogrepl.XLogDataByteID:
			x, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return fmt.Errorf("postgres-cdc: %w", err)
			}
			return s.change(x.WALData)
		}
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("postgres-cdc: replication: %w", pgconn.ErrorResponseToPgError(msg))
	case *pgproto3.CopyDone:
		return errors.New("postgres-cdc: the server ended replication")
	}
	return nil
}

// change takes one pgoutput message.
func (s *Source) change(data []byte) error {
	m, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("postgres-cdc: decode pgoutput message: %w", err)
	}
	switch m := m.(type) {
	case *pglogrepl.RelationMessage:
		s.rels[m.RelationID] = m
	case *pglogrepl.BeginMessage:
		s.open, s.begin, s.cur = true, m, s.cur[:0]
	case *pglogrepl.CommitMessage:
		if !s.open {
			return errors.New("postgres-cdc: commit without begin")
		}
		s.open = false
		if m.TransactionEndLSN <= s.start {
			return nil // handed out before the restart
		}
		s.ready = append(s.ready, s.cur...)
		s.readyEnd = m.TransactionEndLSN
		s.cur = nil
	case *pglogrepl.InsertMessage:
		return s.row(m.RelationID, "c", 0, nil, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return s.row(m.RelationID, "u", m.OldTupleType, m.OldTuple, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return s.row(m.RelationID, "d", m.OldTupleType, m.OldTuple, nil)
	case *pglogrepl.TruncateMessage:
		if s.env.Logger != nil {
			s.env.Logger.Warn("postgres-cdc: TRUNCATE is not streamed", "relations", m.RelationNum)
		}
	}
	return nil
}

// row turns one change into its record (and a tombstone after a delete).
func (s *Source) row(relID uint32, op string, oldType uint8, old, new *pglogrepl.TupleData) error {
	if !s.open {
		return fmt.Errorf("postgres-cdc: %s outside a transaction", op)
	}
	rel, ok := s.rels[relID]
	if !ok {
		return fmt.Errorf("postgres-cdc: change of relation %d before its description", relID)
	}
	keyCols, ok := s.keys[table{rel.Namespace, rel.RelationName}]
	if !ok {
		for _, c := range rel.Columns {
			if c.Flags&1 != 0 {
				keyCols = append(keyCols, c.Name)
			}
		}
	}
	var before, after []byte
	if old != nil {
		before = tupleJSON(rel, old, oldType == 'K')
	}
	if new != nil {
		after = tupleJSON(rel, new, false)
	}
	keyFrom := new
	if keyFrom == nil {
		keyFrom = old
	}
	key := keyJSON(rel, keyCols, keyFrom)
	ev := event{
		Op:     op,
		Before: json.RawMessage(orNull(before)),
		After:  json.RawMessage(orNull(after)),
		Source: eventSource{
			LSN:        s.begin.FinalLSN.String(),
			TxID:       s.begin.Xid,
			CommitTime: s.begin.CommitTime.UTC().Format(time.RFC3339Nano),
			Schema:     rel.Namespace,
			Table:      rel.RelationName,
		},
	}
	value, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("postgres-cdc: encode change: %w", err)
	}
	r := connect.Record{
		Stream:    s.cfg.streamFor(rel.Namespace, rel.RelationName),
		Timestamp: s.begin.CommitTime,
		Key:       key,
		Value:     value,
	}
	s.cur = append(s.cur, r)
	if op == "d" {
		r.Value = nil
		s.cur = append(s.cur, r)
	}
	return nil
}

type event struct {
	Op     string          `json:"op"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source eventSource     `json:"source"`
}

type eventSource struct {
	LSN        string `json:"lsn"`
	TxID       uint32 `json:"txid"`
	CommitTime string `json:"commit_time"`
	Schema     string `json:"schema"`
	Table      string `json:"table"`
	// Snapshot marks the rows of the initial snapshot (op "r"); their
	// lsn is the slot's consistent point, commit_time the snapshot's.
	Snapshot bool `json:"snapshot,omitempty"`
}

func orNull(b []byte) []byte {
	if b == nil {
		return []byte("null")
	}
	return b
}

// Committed confirms pos to the server: it may recycle the WAL before it.
func (s *Source) Committed(ctx context.Context, pos []byte) error {
	if string(pos) == snapshotPosition {
		return nil // the slot's consistent point is confirmed already
	}
	lsn, err := DecodePosition(pos)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if lsn <= s.confirmed {
		return nil
	}
	s.confirmed = lsn
	if s.conn == nil || s.snap != nil {
		return nil
	}
	return s.sendStatus(ctx)
}

func (s *Source) sendStatus(ctx context.Context) error {
	s.lastStatus = time.Now()
	if s.confirmed == 0 {
		return nil
	}
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: s.confirmed,
		WALFlushPosition: s.confirmed,
		WALApplyPosition: s.confirmed,
	})
	if err != nil {
		return fmt.Errorf("postgres-cdc: send status: %w", err)
	}
	return nil
}

// Close ends replication; the slot stays, with the last confirmed
// position.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	s.closeSnapshot()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.conn.Close(ctx)
	s.conn = nil
	return err
}
