package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newConnectorOffsetsResetCmd(f *clientFlags) *cobra.Command {
	to := newEnumFlag("", "earliest", "latest")
	var offsets string
	cmd := &cobra.Command{
		Use:   "reset NAME (--to earliest|latest | --offsets STREAM/SHARD=OFFSET,...)",
		Short: "Move a paused sink's offsets",
		Long: `Reset where a sink goes on when it is resumed: --to earliest (every shard's
start: deliver all of its streams again), --to latest (every shard's end: skip
what is there now), or --offsets with one STREAM/SHARD=OFFSET per shard to set
(shards not named keep their offsets). The connector must be paused; a
running one is refused and nothing changes.

Examples:
  braid connector pause orders-archive
  braid connector offsets reset orders-archive --to earliest
  braid connector offsets reset orders-archive --offsets orders/0=1200,orders/1=980
  braid connector resume orders-archive`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := offsetsResetBody(to.value, offsets)
			if err != nil {
				return err
			}
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			raw, err := f.connectorCall(cmd.Context(), http.MethodPost, connectorPath(args[0], "/offsets/reset"), "application/json", b, nil)
			if err != nil {
				return err
			}
			if f.json() {
				if len(raw) == 0 {
					return writeJSON(cmd.OutOrStdout(), body)
				}
				return writeRawJSON(cmd.OutOrStdout(), raw)
			}
			what := to.value
			if what == "" {
				what = "the given offsets"
			}
			if _, err := fmt.Fprintf(cmd.OutOrStdout(), "offsets of connector %q reset to %s\n", args[0], what); err != nil {
				return err
			}
			return offsetsAnswer(cmd.OutOrStdout(), raw)
		},
	}
	cmd.Flags().Var(to, "to", "earliest or latest: every shard's start or end")
	cmd.Flags().StringVar(&offsets, "offsets", "", "STREAM/SHARD=OFFSET,...: the offsets to set")
	return cmd
}

// offsetsResetRequest is the body of POST .../offsets/reset.
type offsetsResetRequest struct {
	To      string            `json:"to,omitempty"`
	Offsets []connectorOffset `json:"offsets,omitempty"`
}

// offsetsResetBody builds the request from --to or --offsets, exactly one
// of which must be given.
func offsetsResetBody(to, offsets string) (offsetsResetRequest, error) {
	switch {
	case to != "" && offsets != "":
		return offsetsResetRequest{}, errors.New("give either --to or --offsets, not both")
	case to != "":
		return offsetsResetRequest{To: to}, nil
	case strings.TrimSpace(offsets) == "":
		return offsetsResetRequest{}, errors.New("say where to: --to earliest, --to latest or --offsets STREAM/SHARD=OFFSET,...")
	}
	list, err := parseConnectorOffsets(offsets)
	if err != nil {
		return offsetsResetRequest{}, err
	}
	return offsetsResetRequest{Offsets: list}, nil
}

// parseConnectorOffsets reads "orders/0=1200,orders/1=980".
func parseConnectorOffsets(s string) ([]connectorOffset, error) {
	var out []connectorOffset
	seen := map[string]bool{}
	for _, item := range splitList(s) {
		bad := func(why string) error {
			return fmt.Errorf("--offsets %q: %s; want STREAM/SHARD=OFFSET, like orders/0=1200", item, why)
		}
		key, off, ok := strings.Cut(item, "=")
		if !ok {
			return nil, bad("no =")
		}
		slash := strings.LastIndex(key, "/")
		if slash < 0 {
			return nil, bad("no / between stream and shard")
		}
		stream, shardText := strings.TrimSpace(key[:slash]), strings.TrimSpace(key[slash+1:])
		if stream == "" {
			return nil, bad("no stream")
		}
		shard, err := strconv.ParseInt(shardText, 10, 32)
		if err != nil || shard < 0 {
			return nil, bad(fmt.Sprintf("shard %q is not a shard number", shardText))
		}
		offset, err := strconv.ParseInt(strings.TrimSpace(off), 10, 64)
		if err != nil || offset < 0 {
			return nil, bad(fmt.Sprintf("offset %q is not an offset (a number from 0)", strings.TrimSpace(off)))
		}
		k := fmt.Sprintf("%s/%d", stream, shard)
		if seen[k] {
			return nil, fmt.Errorf("--offsets names %s twice", k)
		}
		seen[k] = true
		out = append(out, connectorOffset{Stream: stream, Shard: int32(shard), Offset: offset})
	}
	return out, nil
}
