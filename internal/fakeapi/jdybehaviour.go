package fakeapi

import (
	"fmt"
	"time"
)

// TxMode is how data/batch_create treats a transaction_id it has already
// seen within the hour. The reference leaves this open (section 3.2: the
// official page says "prevents duplicate creation", one third-party copy
// says "overwrites", and its error table has 17026), so tests can make the
// fake take each reading in turn.
type TxMode int

const (
	// TxDedupe answers a resend with the first call's result and creates
	// nothing. The default.
	TxDedupe TxMode = iota
	// TxOverwrite deletes the earlier batch's records and creates the new
	// data_list with new _ids, as S20 describes.
	TxOverwrite
	// TxIgnore ignores transaction_id: every call creates.
	TxIgnore
	// TxReject answers a resend with HTTP 400 and JDYBehaviour.ResendCode,
	// creating nothing.
	TxReject
)

func (m TxMode) String() string {
	switch m {
	case TxDedupe:
		return "dedupe"
	case TxOverwrite:
		return "overwrite"
	case TxIgnore:
		return "ignore"
	case TxReject:
		return "reject"
	}
	return fmt.Sprintf("TxMode(%d)", int(m))
}

// JDYBehaviour picks the fake Jiandaoyun's answer where the reference
// leaves the real one open. The zero value is the behaviour we hope for.
type JDYBehaviour struct {
	TxMode     TxMode // batch_create resend within the hour (default TxDedupe)
	ResendCode int    // code a TxReject resend answers with (default 17026)

	// ListLag delays a record created through the API (create,
	// batch_create, legacy data_create) in data/list until this long has
	// passed on the fake's clock since its createTime, as a search index
	// that lags behind writes would. data/get stays immediate; records
	// inserted by hand are not delayed. 0 means immediate.
	ListLag time.Duration

	// Creator is the username recorded as creator (and updater) of API
	// writes that send no data_creator. The real default is the enterprise
	// creator, which the fake shows as "admin"; "" keeps that.
	Creator string

	// LossyTypes are widget types whose values read back (data/list,
	// data/get) other than written, as a form that reformats them would:
	// text gains a trailing space, numbers 0.001. Nil: every value reads
	// back as written.
	LossyTypes []string
}

// PartialBatch makes a batch_create write only part of its data_list, as
// the reference says can happen ("部分数据新建时可能出现失败").
type PartialBatch struct {
	Keep int // records written from the front of data_list; negative means half, rounded down
	Code int // 0: answer success with the short success_count; otherwise HTTP 400 with this code
}

// SetJDYBehaviour replaces the open-question switches; JDYBehaviour{}
// restores the defaults. Transactions already seen stay known.
func (s *Server) SetJDYBehaviour(b JDYBehaviour) {
	st := s.jdy
	st.mu.Lock()
	st.behaviour = b
	st.mu.Unlock()
	for _, f := range s.addedForms() {
		f.SetJDYBehaviour(b)
	}
}

// JDYBehaviour returns the current switches.
func (s *Server) JDYBehaviour() JDYBehaviour {
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.behaviour
}

// PartialBatchNext makes the next `times` batch_create calls that would
// write (valid, and not answered from the transaction table) write only
// p.Keep records. Calls queue up behind earlier PartialBatchNext settings.
// A transaction_id on such a call is remembered with the ids actually
// written, so a resend sees the partial batch.
func (s *Server) PartialBatchNext(p PartialBatch, times int) {
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := 0; i < times; i++ {
		st.partial = append(st.partial, p)
	}
}

// nextPartial pops the next queued partial batch; the caller holds st.mu.
func (st *jdyStore) nextPartial() (PartialBatch, bool) {
	if len(st.partial) == 0 {
		return PartialBatch{}, false
	}
	p := st.partial[0]
	st.partial = st.partial[1:]
	if len(st.partial) == 0 {
		st.partial = nil
	}
	return p, true
}

// keep is how many of n records a partial batch writes.
func (p PartialBatch) keep(n int) int {
	switch {
	case p.Keep < 0:
		return n / 2
	case p.Keep > n:
		return n
	}
	return p.Keep
}

// apiCreator is the creator of an API write: data_creator when sent,
// else the configured API user. The caller holds st.mu.
func (st *jdyStore) apiCreator(dataCreator *string) string {
	if c := deref(dataCreator); c != "" {
		return c
	}
	return st.behaviour.Creator
}

// listVisible reports whether data/list shows r at now; the caller holds
// st.mu.
func (st *jdyStore) listVisible(r *jdyRecord, now time.Time) bool {
	lag := st.behaviour.ListLag
	return lag <= 0 || !r.viaAPI || now.Sub(r.created) >= lag
}
