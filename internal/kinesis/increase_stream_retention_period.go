package kinesis

import (
	"context"
	"strconv"

	"github.com/braidstream/braid/internal/catalog"
)

// IncreaseStreamRetentionPeriod sets retention.ms to RetentionPeriodHours
// (24-8760), refusing a value below the current retention. Records
// already deleted stay deleted.
func init() { register("IncreaseStreamRetentionPeriod", increaseStreamRetentionPeriod) }

type retentionPeriodInput struct {
	streamRef
	RetentionPeriodHours *int `json:"RetentionPeriodHours"`
}

func increaseStreamRetentionPeriod(_ context.Context, s *Server, body []byte) (any, error) {
	return nil, s.setRetention(body, true)
}

// setRetention is IncreaseStreamRetentionPeriod (increase) or
// DecreaseStreamRetentionPeriod: the check against the current retention
// and the change happen under the engine's catalog lock.
func (s *Server) setRetention(body []byte, increase bool) error {
	var in retentionPeriodInput
	if err := decode(body, &in); err != nil {
		return err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return err
	}
	if in.RetentionPeriodHours == nil {
		return errorf(errValidation, "1 validation error detected: Value null at 'retentionPeriodHours' failed to satisfy constraint: Member must not be null")
	}
	h := *in.RetentionPeriodHours
	if h < minRetentionHours {
		return errorf(errInvalidArgument, "Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", minRetentionHours, h)
	}
	if h > maxRetentionHours {
		return errorf(errInvalidArgument, "Maximum allowed retention period is %d hours. Requested retention period (%d hours) is too long.", maxRetentionHours, h)
	}
	want := int64(h) * retentionHourMs
	return s.eng.UpdateConfigs(st.Name, func(cur *catalog.Stream) (map[string]*string, error) {
		ms := retentionMs(s, cur)
		forever := ms < 0
		switch {
		case increase && (forever || want < ms):
			return nil, errorf(errInvalidArgument, "Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%s). Use DecreaseStreamRetentionPeriod API.", h, cur.Name, describeMs(ms))
		case !increase && !forever && want > ms:
			return nil, errorf(errInvalidArgument, "Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%s). Use IncreaseStreamRetentionPeriod API.", h, cur.Name, describeMs(ms))
		}
		v := strconv.FormatInt(want, 10)
		return map[string]*string{"retention.ms": &v}, nil
	})
}

func describeMs(ms int64) string {
	if ms < 0 {
		return "forever"
	}
	if ms%retentionHourMs == 0 {
		return strconv.FormatInt(ms/retentionHourMs, 10) + " hours"
	}
	return strconv.FormatInt(ms, 10) + " ms"
}
