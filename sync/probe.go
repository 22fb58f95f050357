package sync

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ProbeKeyPrefix starts the key of every record `check --write-probe`
// writes. No userid can produce it (WeCom userids are letters, digits and
// _-.@), so such a record is never taken for a synced one: verify skips it.
const ProbeKeyPrefix = "~probe~|"

// IsProbeKey reports whether a form key is one of a write probe's records.
func IsProbeKey(key string) bool { return strings.HasPrefix(key, ProbeKeyPrefix) }

// Store meta keys of the write probe.
const (
	// MetaWriteProbe holds the last probe's ProbeResult (JSON).
	MetaWriteProbe = "write_probe"
	// MetaProbeRecords holds the ProbeRecords a probe wrote and has not
	// deleted yet (JSON); the next probe deletes them first.
	MetaProbeRecords = "write_probe_records"
)

// Resend outcomes: what batch_create does with a transaction_id it has
// seen.
const (
	ResendDedupe    = "dedupe"    // answers with the first call's result, creates nothing
	ResendOverwrite = "overwrite" // replaces the first call's records with new ones
	ResendCreates   = "creates"   // creates the records again
	ResendError     = "error"     // answers an error (Code), creates nothing
	ResendUnclear   = "unclear"   // the probe could not tell
)

// ResendResult is what one resend under a known transaction_id did.
type ResendResult struct {
	Outcome string `json:"outcome"`
	Code    int    `json:"code,omitempty"` // the error code, for ResendError
	After   string `json:"after"`          // how long after the first send, e.g. "0s", "2s"
	Detail  string `json:"detail,omitempty"`
}

// ProbeResult is what a write probe measured on a scratch form.
type ProbeResult struct {
	Date    string    `json:"date"` // YYYY-MM-DD, in the configured time zone
	At      time.Time `json:"at"`
	EntryID string    `json:"entry_id"` // the scratch form

	Resends []ResendResult `json:"resends"`

	ListLagSamplesMS []int64 `json:"list_lag_samples_ms"`
	ListLagWorstMS   int64   `json:"list_lag_worst_ms"`

	// RoundTripTypes are the widget types written and read back;
	// NotRoundTrip the ones whose value did not survive, with a line per
	// field in RoundTripDetail.
	RoundTripTypes  []string `json:"round_trip_types"`
	NotRoundTrip    []string `json:"not_round_trip,omitempty"`
	RoundTripDetail []string `json:"round_trip_detail,omitempty"`

	// UpdateTouchesOnlyGiven is whether an update left the fields it was
	// not given alone; UpdateDetail names the ones it changed.
	UpdateTouchesOnlyGiven bool     `json:"update_touches_only_given"`
	UpdateDetail           []string `json:"update_detail,omitempty"`
	// Cleared and NotCleared are the widget types whose empty value did
	// and did not clear a field.
	Cleared    []string `json:"cleared,omitempty"`
	NotCleared []string `json:"not_cleared,omitempty"`
	// ClearDetail says, per field or type, how clearing failed.
	ClearDetail []string `json:"clear_detail,omitempty"`

	// InFilterExact: the in filter with 100 values matched exactly,
	// case-sensitively and missed nothing; InFilterDetail says otherwise.
	InFilterExact  bool   `json:"in_filter_exact"`
	InFilterDetail string `json:"in_filter_detail,omitempty"`
}

// ResendCreatesAgain reports whether any resend under a known
// transaction_id created the records again.
func (p *ProbeResult) ResendCreatesAgain() bool {
	for _, r := range p.Resends {
		if r.Outcome == ResendCreates || r.Outcome == ResendUnclear {
			return true
		}
	}
	return false
}

// ListLag is the worst list lag measured.
func (p *ProbeResult) ListLag() time.Duration {
	return time.Duration(p.ListLagWorstMS) * time.Millisecond
}

// MinConsistencyDelay is the least consistency delay the probe allows:
// three times the worst list lag measured.
func (p *ProbeResult) MinConsistencyDelay() time.Duration { return 3 * p.ListLag() }

// Adapt returns opts changed for what the probe found: a form that creates
// again on a resend is never sent a batch twice under one transaction_id
// (its keys are looked up, then go into a batch with a new id), and the
// consistency delay is at least three times the worst list lag. It
// returns a line per change made, for the log.
func (p *ProbeResult) Adapt(opts Options) (Options, []string) {
	var notes []string
	if p.ResendCreatesAgain() && !opts.NeverResendSameTxID {
		opts.NeverResendSameTxID = true
		notes = append(notes, "a resend under the same transaction_id creates again: batches are never resent under their transaction_id; their keys are looked up, then sent under a new one")
	}
	cur := opts.ConsistencyDelay
	if cur <= 0 {
		cur = DefaultConsistencyDelay
	}
	if min := p.MinConsistencyDelay(); min > cur {
		opts.ConsistencyDelay = min
		notes = append(notes, fmt.Sprintf("consistency delay raised from %s to %s, three times the worst list lag measured (%s)", cur, min, p.ListLag()))
	}
	return opts, notes
}

// ParseProbeResult decodes the stored result; nil raw gives nil.
func ParseProbeResult(raw []byte) (*ProbeResult, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var p ProbeResult
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("the stored write probe result is unreadable: %w", err)
	}
	return &p, nil
}

// ProbeRecords are the records a probe is writing or wrote to its scratch
// form: the transaction_ids and keys saved before each batch_create, the
// _ids once its answer came.
type ProbeRecords struct {
	EntryID string   `json:"entry_id"`
	TxIDs   []string `json:"transaction_ids,omitempty"`
	Keys    []string `json:"keys,omitempty"`
	IDs     []string `json:"ids,omitempty"`
	// Unanswered counts batch_create calls whose answer did not come (or
	// did not name the ids): their records can only be found by key.
	Unanswered int `json:"unanswered,omitempty"`
}
