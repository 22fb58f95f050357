package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"checkin-sync/internal/month"
)

// Pending is a create batch saved before it is sent, so that the form can
// decide its outcome later: its keys are looked up, and it is resent under
// the same transaction id only while its content is exactly what was sent.
type Pending struct {
	TxID        string
	Month       string
	UserIDs     []string // keys in the order they were sent
	Hashes      []uint64 // payload hash of each, same order
	FirstSentAt time.Time
	LastSentAt  time.Time // saved before each send; the lookup waits a consistency delay after it
	Resends     int       // identical resends under TxID so far
	// LookupOnly: the entry no longer holds everything that was sent under
	// TxID (some keys were adopted), so it must never be resent under it.
	LookupOnly bool
}

// MonthInfo summarises one month. Synced, Pending and Failed are kept by
// the store itself as records are written; the values passed in
// Write.Months are ignored. LastRunID stays empty until a run records its
// outcome for the month, which `status` shows as never.
type MonthInfo struct {
	Month     string
	Watermark string // YYYY-MM-DD, or "" when none; never moves backwards
	Synced    int
	Pending   int
	Failed    int
	// Dirty: the last run that processed the month left failed or pending
	// records.
	Dirty bool
	// InProgress: a run started the month and no run has gone through it
	// since. It is set when a run starts the month, before anything is
	// fetched, and cleared only when a run has fetched every user of the
	// month and settled every batch, so an interrupted or killed run, a
	// fetch that failed after its retries, a batch left pending or a
	// store write that failed (a full disk) leave it set. Records that
	// Jiandaoyun rejected do not: they leave only Dirty.
	InProgress   bool
	LastRunID    string
	LastRunStart time.Time
	LastSuccess  time.Time
}

// KeyedRecord is a record with its place in the store.
type KeyedRecord struct {
	Month, UserID string
	Record        Record
}

// Write is everything one checkpoint changes. Apply commits it in a single
// bbolt transaction: all of it lands or none of it does.
type Write struct {
	Records       []KeyedRecord
	PutPending    []Pending
	DeletePending []string // transaction ids; applied before PutPending
	Months        []MonthInfo
}

type pendingV1 struct {
	Month       string    `json:"month"`
	UserIDs     []string  `json:"user_ids"`
	Hashes      []uint64  `json:"hashes"`
	FirstSentAt time.Time `json:"first_sent_at"`
	LastSentAt  time.Time `json:"last_sent_at,omitzero"`
	Resends     int       `json:"resends,omitempty"`
	LookupOnly  bool      `json:"lookup_only,omitempty"`
}

type monthV1 struct {
	Watermark    string    `json:"watermark,omitempty"`
	Synced       int       `json:"synced"`
	Pending      int       `json:"pending"`
	Failed       int       `json:"failed"`
	Dirty        bool      `json:"dirty,omitempty"`
	InProgress   bool      `json:"in_progress,omitempty"`
	LastRunID    string    `json:"last_run_id,omitempty"`
	LastRunStart time.Time `json:"last_run_start,omitzero"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
}

const maxUserID = 1024

// checkMonth accepts exactly YYYY-MM, the form bucket names are built from.
func checkMonth(m string) error {
	p, err := month.Parse(m)
	if err != nil {
		return err
	}
	if p.String() != m {
		return fmt.Errorf("month %q: want YYYY-MM", m)
	}
	return nil
}

func recBucket(m string) []byte { return []byte(recPrefix + m) }

// counts is synced, pending, failed, indexed by State.
type counts [4]int

func (c counts) negative() bool {
	return c[StateSynced] < 0 || c[StatePending] < 0 || c[StateFailed] < 0
}

// onlyNewPending reports whether w saves a create batch: a pending entry
// and its records, all pending.
func onlyNewPending(w *Write) bool {
	if len(w.PutPending) == 0 || len(w.Records) == 0 {
		return false
	}
	for i := range w.Records {
		if w.Records[i].Record.State != StatePending {
			return false
		}
	}
	return true
}

// Apply commits w in one write transaction.
func (s *Store) Apply(w *Write) error {
	if w == nil {
		return nil
	}
	fill := recFillPercent
	if onlyNewPending(w) {
		fill = pendingFillPercent
	}
	err := s.update(func(tx *bbolt.Tx) error {
		deltas := map[string]*counts{}
		// Keys and values must stay valid until commit, so they share one
		// arena instead of one allocation per record.
		arena := make([]byte, 0, len(w.Records)*64)
		var bucket *bbolt.Bucket
		var bucketMonth string
		for i := range w.Records {
			kr := &w.Records[i]
			if bucket == nil || kr.Month != bucketMonth {
				if err := checkMonth(kr.Month); err != nil {
					return fmt.Errorf("record %d: %w", i, err)
				}
				b, err := tx.CreateBucketIfNotExists(recBucket(kr.Month))
				if err != nil {
					return fmt.Errorf("record %d: %w", i, err)
				}
				b.FillPercent = fill
				bucket, bucketMonth = b, kr.Month
			}
			if kr.UserID == "" || len(kr.UserID) > maxUserID {
				return fmt.Errorf("record %d (%s): userid must be 1..%d bytes", i, kr.Month, maxUserID)
			}
			start := len(arena)
			arena = append(arena, kr.UserID...)
			key := arena[start:len(arena):len(arena)]
			start = len(arena)
			var err error
			if arena, err = appendRecord(arena, &kr.Record); err != nil {
				return fmt.Errorf("record %s/%s: %w", kr.Month, kr.UserID, err)
			}
			val := arena[start:len(arena):len(arena)]

			d := deltas[kr.Month]
			if d == nil {
				d = &counts{}
				deltas[kr.Month] = d
			}
			if old := bucket.Get(key); old != nil {
				st, err := recordState(old)
				if err != nil {
					return fmt.Errorf("%w: record %s/%s: %v", ErrCorrupt, kr.Month, kr.UserID, err)
				}
				d[st]--
			}
			d[kr.Record.State]++
			if err := bucket.Put(key, val); err != nil {
				return fmt.Errorf("record %s/%s: %w", kr.Month, kr.UserID, err)
			}
		}

		pb, err := tx.CreateBucketIfNotExists([]byte(bucketPending))
		if err != nil {
			return err
		}
		for _, id := range w.DeletePending {
			if err := pb.Delete([]byte(id)); err != nil {
				return fmt.Errorf("delete pending %s: %w", id, err)
			}
		}
		for i := range w.PutPending {
			p := &w.PutPending[i]
			if err := checkPending(p); err != nil {
				return err
			}
			v, err := json.Marshal(pendingV1{Month: p.Month, UserIDs: p.UserIDs, Hashes: p.Hashes,
				FirstSentAt: p.FirstSentAt, LastSentAt: p.LastSentAt, Resends: p.Resends, LookupOnly: p.LookupOnly})
			if err != nil {
				return err
			}
			if err := pb.Put([]byte(p.TxID), v); err != nil {
				return fmt.Errorf("put pending %s: %w", p.TxID, err)
			}
		}

		given := map[string]*MonthInfo{}
		for i := range w.Months {
			mi := &w.Months[i]
			if err := checkMonthInfo(mi); err != nil {
				return err
			}
			given[mi.Month] = mi
			if deltas[mi.Month] == nil {
				deltas[mi.Month] = &counts{}
			}
		}
		mb, err := tx.CreateBucketIfNotExists([]byte(bucketMonths))
		if err != nil {
			return err
		}
		for m, d := range deltas {
			if err := mergeMonth(tx, mb, m, d, given[m]); err != nil {
				return err
			}
		}
		if s.testHookApply != nil {
			s.testHookApply()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply checkpoint: %w", err)
	}
	return nil
}

// mergeMonth updates a months entry: counts move by d, the caller's fields
// (if any) replace the rest, and the watermark never goes backwards.
func mergeMonth(tx *bbolt.Tx, mb *bbolt.Bucket, m string, d *counts, mi *MonthInfo) error {
	var cur monthV1
	old := mb.Get([]byte(m))
	if old != nil {
		if err := json.Unmarshal(old, &cur); err != nil {
			return fmt.Errorf("%w: month %s: %v", ErrCorrupt, m, err)
		}
	}
	c := counts{0, cur.Synced, cur.Pending, cur.Failed}
	for st := range c {
		c[st] += d[st]
	}
	if old == nil || c.negative() {
		// No entry yet, or one out of step: count the bucket itself.
		var err error
		if c, err = countBucket(tx, m); err != nil {
			return err
		}
	}
	next := cur
	if mi != nil {
		wm := mi.Watermark
		if wm < cur.Watermark {
			wm = cur.Watermark
		}
		next = monthV1{
			Watermark:    wm,
			Dirty:        mi.Dirty,
			InProgress:   mi.InProgress,
			LastRunID:    mi.LastRunID,
			LastRunStart: mi.LastRunStart,
			LastSuccess:  mi.LastSuccess,
		}
	}
	next.Synced, next.Pending, next.Failed = c[StateSynced], c[StatePending], c[StateFailed]
	v, err := json.Marshal(next)
	if err != nil {
		return err
	}
	return mb.Put([]byte(m), v)
}

func checkPending(p *Pending) error {
	if p.TxID == "" {
		return errors.New("pending batch without a transaction id")
	}
	if err := checkMonth(p.Month); err != nil {
		return fmt.Errorf("pending %s: %w", p.TxID, err)
	}
	if len(p.UserIDs) == 0 || len(p.UserIDs) != len(p.Hashes) {
		return fmt.Errorf("pending %s: %d userids and %d hashes", p.TxID, len(p.UserIDs), len(p.Hashes))
	}
	return nil
}

func checkMonthInfo(mi *MonthInfo) error {
	if err := checkMonth(mi.Month); err != nil {
		return err
	}
	if mi.Watermark == "" {
		return nil
	}
	d, err := month.ParseDate(mi.Watermark)
	if err != nil {
		return fmt.Errorf("month %s: watermark: %w", mi.Month, err)
	}
	if d.Month().String() != mi.Month {
		return fmt.Errorf("month %s: watermark %s lies outside the month", mi.Month, mi.Watermark)
	}
	return nil
}

// countBucket counts the records of a month by state.
func countBucket(tx *bbolt.Tx, m string) (counts, error) {
	var c counts
	b := tx.Bucket(recBucket(m))
	if b == nil {
		return c, nil
	}
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		st, err := recordState(v)
		if err != nil {
			return c, fmt.Errorf("%w: record %s/%s: %v", ErrCorrupt, m, k, err)
		}
		c[st]++
	}
	return c, nil
}

// ResetMonth forgets a month; see ForgetMonth.
func (s *Store) ResetMonth(m string) error {
	_, err := s.ForgetMonth(m)
	return err
}

// Forgotten is what ForgetMonth did.
type Forgotten struct {
	// Known: the store held something of the month (records, a months
	// entry or pending batches) before the reset.
	Known bool
	// Records is how many records were dropped.
	Records int
	// KeptBatches and KeptRecords are the pending batches of the month,
	// kept with their records marked pending, for the next sync to
	// resolve first.
	KeptBatches, KeptRecords int
}

// ForgetMonth forgets a month's checkpoints and watermark in one
// transaction: its records and its months entry go. Its pending batches
// stay, since their outcome is still open: each keeps its keys marked
// pending (with the hash that was sent), and the next sync resolves them
// by key before anything else. Nothing is decoded, so a month with a
// damaged record can still be reset.
func (s *Store) ForgetMonth(m string) (Forgotten, error) {
	var f Forgotten
	if err := checkMonth(m); err != nil {
		return f, err
	}
	err := s.update(func(tx *bbolt.Tx) error {
		f = Forgotten{}
		var kept []Pending
		if pb := tx.Bucket([]byte(bucketPending)); pb != nil {
			err := pb.ForEach(func(k, v []byte) error {
				p, err := decodePending(k, v)
				if err != nil {
					return err
				}
				if p.Month == m {
					kept = append(kept, p)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if b := tx.Bucket(recBucket(m)); b != nil {
			f.Known = true
			f.Records = b.Stats().KeyN
			// Records put back as pending below are not forgotten.
			seen := map[string]bool{}
			for _, p := range kept {
				for _, uid := range p.UserIDs {
					if !seen[uid] && b.Get([]byte(uid)) != nil {
						f.Records--
					}
					seen[uid] = true
				}
			}
			if err := tx.DeleteBucket(recBucket(m)); err != nil {
				return err
			}
		}
		mb := tx.Bucket([]byte(bucketMonths))
		if mb != nil && mb.Get([]byte(m)) != nil {
			f.Known = true
			if err := mb.Delete([]byte(m)); err != nil {
				return err
			}
		}
		if len(kept) == 0 {
			return nil
		}
		f.Known = true
		f.KeptBatches = len(kept)
		b, err := tx.CreateBucket(recBucket(m))
		if err != nil {
			return err
		}
		b.FillPercent = recFillPercent
		var buf []byte
		for _, p := range kept {
			for i, uid := range p.UserIDs {
				if b.Get([]byte(uid)) != nil {
					continue // in two batches: counted once
				}
				if buf, err = appendRecord(buf[:0], &Record{Hash: p.Hashes[i], State: StatePending}); err != nil {
					return fmt.Errorf("pending %s: %w", p.TxID, err)
				}
				if err := b.Put([]byte(uid), bytes.Clone(buf)); err != nil {
					return err
				}
				f.KeptRecords++
			}
		}
		if mb == nil {
			if mb, err = tx.CreateBucket([]byte(bucketMonths)); err != nil {
				return err
			}
		}
		v, err := json.Marshal(monthV1{Pending: f.KeptRecords})
		if err != nil {
			return err
		}
		return mb.Put([]byte(m), v)
	})
	if err != nil {
		return Forgotten{}, fmt.Errorf("reset month %s: %w", m, err)
	}
	return f, nil
}

// CheckIdentity compares the store's corp, app and form with id without
// binding it: an unbound store, or an id with an empty part, passes. It
// returns *ForeignError on a mismatch. Commands that only read or reset
// the store use it, so they never bind a store to a half-known identity.
func (s *Store) CheckIdentity(id Identity) error {
	if id.CorpID == "" || id.AppID == "" || id.EntryID == "" {
		return nil
	}
	return s.view(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return nil
		}
		v := meta.Get([]byte(metaIdentity))
		if v == nil {
			return nil
		}
		var have identityV1
		if err := json.Unmarshal(v, &have); err != nil {
			return corruptf(s.path, "bad identity in meta: %v", err)
		}
		if h := have.identity(); h != id {
			return &ForeignError{Path: s.path, Have: h, Want: id}
		}
		return nil
	})
}

// Lookup reads the records of userids in one month in one read
// transaction: out[i] and found[i] answer userids[i]. It is on the hot path
// of an unchanged rerun, so it allocates nothing beyond the decoded strings.
func (s *Store) Lookup(m string, userids []string, out []Record, found []bool) error {
	if len(out) < len(userids) || len(found) < len(userids) {
		return fmt.Errorf("lookup: %d userids but room for %d records and %d flags", len(userids), len(out), len(found))
	}
	if err := checkMonth(m); err != nil {
		return err
	}
	return s.view(func(tx *bbolt.Tx) error {
		var c *bbolt.Cursor
		if b := tx.Bucket(recBucket(m)); b != nil {
			c = b.Cursor() // one cursor for the batch: Bucket.Get allocates one per call
		}
		for i, uid := range userids {
			found[i] = false
			if c == nil || uid == "" {
				out[i] = Record{}
				continue
			}
			// bbolt only reads the key, so the string's bytes can be lent.
			key := unsafe.Slice(unsafe.StringData(uid), len(uid))
			k, v := c.Seek(key)
			if v == nil || !bytes.Equal(k, key) {
				out[i] = Record{}
				continue
			}
			if err := decodeRecord(v, &out[i]); err != nil {
				return fmt.Errorf("%w: record %s/%s: %v", ErrCorrupt, m, uid, err)
			}
			found[i] = true
		}
		return nil
	})
}

// ForEach calls fn for every record of a month in ascending userid order,
// inside one read transaction. An error from fn stops the walk and is
// returned as is.
func (s *Store) ForEach(m string, fn func(userid string, r Record) error) error {
	if err := checkMonth(m); err != nil {
		return err
	}
	var fnErr error
	var fnPanic any
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(recBucket(m))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r Record
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("%w: record %s/%s: %v", ErrCorrupt, m, k, err)
			}
			// A panic in the caller's fn is not store corruption: carry it
			// out of the transaction and re-raise it there.
			func() {
				defer func() { fnPanic = recover() }()
				fnErr = fn(string(k), r)
			}()
			if fnPanic != nil || fnErr != nil {
				return nil
			}
		}
		return nil
	})
	if fnPanic != nil {
		panic(fnPanic)
	}
	if err != nil {
		return err
	}
	return fnErr
}

func decodePending(k, v []byte) (Pending, error) {
	var p pendingV1
	if err := json.Unmarshal(v, &p); err != nil {
		return Pending{}, fmt.Errorf("%w: pending %s: %v", ErrCorrupt, k, err)
	}
	if len(p.UserIDs) != len(p.Hashes) {
		return Pending{}, fmt.Errorf("%w: pending %s: %d userids and %d hashes", ErrCorrupt, k, len(p.UserIDs), len(p.Hashes))
	}
	last := p.LastSentAt
	if last.IsZero() {
		last = p.FirstSentAt // entries written before last_sent_at was kept
	}
	return Pending{TxID: string(k), Month: p.Month, UserIDs: p.UserIDs, Hashes: p.Hashes,
		FirstSentAt: p.FirstSentAt, LastSentAt: last, Resends: p.Resends, LookupOnly: p.LookupOnly}, nil
}

// Pendings returns every saved create batch, oldest first send first.
func (s *Store) Pendings() ([]Pending, error) {
	var out []Pending
	err := s.view(func(tx *bbolt.Tx) error {
		pb := tx.Bucket([]byte(bucketPending))
		if pb == nil {
			return nil
		}
		return pb.ForEach(func(k, v []byte) error {
			p, err := decodePending(k, v)
			if err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].FirstSentAt.Equal(out[j].FirstSentAt) {
			return out[i].FirstSentAt.Before(out[j].FirstSentAt)
		}
		return out[i].TxID < out[j].TxID
	})
	return out, nil
}

func decodeMonth(k, v []byte) (MonthInfo, error) {
	var mv monthV1
	if err := json.Unmarshal(v, &mv); err != nil {
		return MonthInfo{}, fmt.Errorf("%w: month %s: %v", ErrCorrupt, k, err)
	}
	return MonthInfo{
		Month: string(k), Watermark: mv.Watermark,
		Synced: mv.Synced, Pending: mv.Pending, Failed: mv.Failed,
		Dirty: mv.Dirty, InProgress: mv.InProgress, LastRunID: mv.LastRunID, LastRunStart: mv.LastRunStart, LastSuccess: mv.LastSuccess,
	}, nil
}

// Month returns one month's summary; found is false when the store knows
// nothing of it.
func (s *Store) Month(m string) (MonthInfo, bool, error) {
	if err := checkMonth(m); err != nil {
		return MonthInfo{}, false, err
	}
	info := MonthInfo{Month: m}
	var found bool
	err := s.view(func(tx *bbolt.Tx) error {
		mb := tx.Bucket([]byte(bucketMonths))
		if mb == nil {
			return nil
		}
		v := mb.Get([]byte(m))
		if v == nil {
			return nil
		}
		var err error
		info, err = decodeMonth([]byte(m), v)
		found = err == nil
		return err
	})
	return info, found, err
}

// Months returns every month the store knows, ascending.
func (s *Store) Months() ([]MonthInfo, error) {
	var out []MonthInfo
	err := s.view(func(tx *bbolt.Tx) error {
		mb := tx.Bucket([]byte(bucketMonths))
		if mb == nil {
			return nil
		}
		return mb.ForEach(func(k, v []byte) error {
			mi, err := decodeMonth(k, v)
			if err != nil {
				return err
			}
			out = append(out, mi)
			return nil
		})
	})
	return out, err
}

// Count counts a month's records by state, scanning rec/<month>.
func (s *Store) Count(m string) (synced, pending, failed int, err error) {
	if err := checkMonth(m); err != nil {
		return 0, 0, 0, err
	}
	var c counts
	err = s.view(func(tx *bbolt.Tx) error {
		var err error
		c, err = countBucket(tx, m)
		return err
	})
	return c[StateSynced], c[StatePending], c[StateFailed], err
}
