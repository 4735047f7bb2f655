package kafka

import (
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListTransactions v0-v2: transactional ids, filtered by state, producer id,
// (v1+) minimum running time and (v2+) an id regular expression. Unknown
// state names are echoed back as Kafka does.
func init() { register(66, 0, 2, handleListTransactions) }

func handleListTransactions(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	known := map[string]bool{"Empty": true, "Ongoing": true, "PrepareCommit": true, "PrepareAbort": true,
		"CompleteCommit": true, "CompleteAbort": true, "Dead": true, "PrepareEpochFence": true}
	for _, s := range req.StateFilters {
		if !known[s] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
		states[s] = true
	}
	pids := map[int64]bool{}
	for _, p := range req.ProducerIDFilters {
		pids[p] = true
	}
	var re *regexp.Regexp
	if req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if re, err = regexp.Compile(*req.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
	}
	now := time.Now().UnixMilli()
	for _, rec := range c.s.eng.Txns().List() {
		switch {
		case len(states) > 0 && !states[rec.State.String()],
			len(pids) > 0 && !pids[rec.PID],
			req.DurationFilterMillis >= 0 && req.Version >= 1 && (rec.StartMs == 0 || now-rec.StartMs < req.DurationFilterMillis),
			re != nil && !re.MatchString(rec.ID):
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = rec.ID, rec.PID, rec.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp, nil
}
