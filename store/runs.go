package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Run is one run's record in the history.
type Run struct {
	ID      string    `json:"id"`
	Command string    `json:"command"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	Months  []string  `json:"months"`

	Fetched    int `json:"fetched"`
	Created    int `json:"created"`
	Updated    int `json:"updated"`
	Unchanged  int `json:"unchanged"`
	Failed     int `json:"failed"`
	Skipped    int `json:"skipped"`
	Duplicates int `json:"duplicates"`

	Calls   map[string]int `json:"calls,omitempty"`
	Retries map[string]int `json:"retries,omitempty"`

	ExitCode int    `json:"exit_code"`
	Outcome  string `json:"outcome"` // running, success, partial, failed, interrupted; history shows a stale running as killed
	Error    string `json:"error,omitempty"`

	// Deleted keeps every record the run deleted (a newer copy of a key
	// that a second writer made), with its full content as JSON, so that
	// nothing is lost without a trace.
	Deleted []DeletedRecord `json:"deleted,omitempty"`
}

// DeletedRecord is one record a run deleted from the form.
type DeletedRecord struct {
	Key     string          `json:"key"`
	DataID  string          `json:"data_id"`
	Kept    string          `json:"kept"` // the _id of the copy that stayed
	Content json.RawMessage `json:"content"`
}

// runV1 is the stored form of a Run, kept apart from Run so that changing
// how runs are shown cannot change how old ones are read.
type runV1 struct {
	Command    string          `json:"command"`
	Start      time.Time       `json:"start"`
	End        time.Time       `json:"end,omitzero"`
	Months     []string        `json:"months,omitempty"`
	Fetched    int             `json:"fetched,omitempty"`
	Created    int             `json:"created,omitempty"`
	Updated    int             `json:"updated,omitempty"`
	Unchanged  int             `json:"unchanged,omitempty"`
	Failed     int             `json:"failed,omitempty"`
	Skipped    int             `json:"skipped,omitempty"`
	Duplicates int             `json:"duplicates,omitempty"`
	Calls      map[string]int  `json:"calls,omitempty"`
	Retries    map[string]int  `json:"retries,omitempty"`
	ExitCode   int             `json:"exit_code"`
	Outcome    string          `json:"outcome"`
	Error      string          `json:"error,omitempty"`
	Deleted    []DeletedRecord `json:"deleted,omitempty"`
}

// NewRunID returns an id that sorts lexically in time order (UTC, fixed
// width), with a random suffix so two runs in the same instant differ.
func NewRunID(t time.Time) string {
	var r [3]byte
	_, _ = rand.Read(r[:])
	return t.UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(r[:])
}

// PutRun inserts or replaces a run by ID and drops all but the newest
// runs (1000), oldest first.
func (s *Store) PutRun(r Run) error {
	if r.ID == "" {
		return errors.New("put run: empty id")
	}
	v, err := json.Marshal(runV1{
		Command: r.Command, Start: r.Start, End: r.End, Months: r.Months,
		Fetched: r.Fetched, Created: r.Created, Updated: r.Updated, Unchanged: r.Unchanged,
		Failed: r.Failed, Skipped: r.Skipped, Duplicates: r.Duplicates,
		Calls: r.Calls, Retries: r.Retries, ExitCode: r.ExitCode, Outcome: r.Outcome, Error: r.Error,
		Deleted: r.Deleted,
	})
	if err != nil {
		return fmt.Errorf("put run: %w", err)
	}
	err = s.update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketRuns))
		if err != nil {
			return err
		}
		if err := b.Put([]byte(r.ID), v); err != nil {
			return err
		}
		// Walk back over the runs to keep; everything before them goes.
		c := b.Cursor()
		k, _ := c.Last()
		for i := 1; i < s.maxRuns && k != nil; i++ {
			k, _ = c.Prev()
		}
		if k == nil {
			return nil
		}
		var drop [][]byte
		for k, _ = c.Prev(); k != nil; k, _ = c.Prev() {
			drop = append(drop, bytes.Clone(k))
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put run %s: %w", r.ID, err)
	}
	return nil
}

// Runs returns up to limit runs, newest first; limit <= 0 means all.
func (s *Store) Runs(limit int) ([]Run, error) {
	var out []Run
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketRuns))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var rv runV1
			if err := json.Unmarshal(v, &rv); err != nil {
				return fmt.Errorf("%w: run %s: %v", ErrCorrupt, k, err)
			}
			out = append(out, Run{
				ID: string(k), Command: rv.Command, Start: rv.Start, End: rv.End, Months: rv.Months,
				Fetched: rv.Fetched, Created: rv.Created, Updated: rv.Updated, Unchanged: rv.Unchanged,
				Failed: rv.Failed, Skipped: rv.Skipped, Duplicates: rv.Duplicates,
				Calls: rv.Calls, Retries: rv.Retries, ExitCode: rv.ExitCode, Outcome: rv.Outcome, Error: rv.Error,
				Deleted: rv.Deleted,
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
