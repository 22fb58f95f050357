package fakeapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Record is one stored Jiandaoyun record in read shape: Data holds the form
// fields flat (no {value:} wrapper), without system fields.
type Record struct {
	ID         string
	Data       map[string]any
	CreateTime time.Time
	UpdateTime time.Time
	Creator    string // creator's username; "admin" is the enterprise creator
	Updater    string // last updater's username
}

// jdyRecord keeps its field values in slots shared by the whole store
// rather than in a map per record: the benchmarks hold hundreds of
// thousands of records, and a slice is a fraction of a map's size.
type jdyRecord struct {
	id               string
	created, updated time.Time
	creator          string // data_creator username; "" means the enterprise creator
	updater          string // last API updater; "" means the enterprise creator
	viaAPI           bool   // created through the API, so JDYBehaviour.ListLag applies
	vals             []any  // by slot; nil means absent
}

func (r *jdyRecord) get(slot int) any {
	if slot < 0 || slot >= len(r.vals) {
		return nil
	}
	return r.vals[slot]
}

type fieldVal struct {
	name string
	val  any // nil clears the field
}

type txEntry struct {
	first time.Time
	ids   []string
}

// txWindow is how long a batch_create transaction_id keeps answering with
// its first result.
const txWindow = time.Hour

type jdyStore struct {
	mu       sync.Mutex
	slots    map[string]int
	names    []string
	recs     []*jdyRecord // ascending by id, which is creation order
	byID     map[string]*jdyRecord
	idx      map[int]map[string][]*jdyRecord // slot -> value key -> records ascending by id; built on first eq/in
	prefix   uint32
	seq      uint64
	rowSeq   uint64
	tx       map[string]*txEntry
	modified time.Time

	behaviour JDYBehaviour
	partial   []PartialBatch // queued by PartialBatchNext
}

func newJDYStore(start time.Time) *jdyStore {
	return &jdyStore{
		slots:    make(map[string]int),
		byID:     make(map[string]*jdyRecord),
		idx:      make(map[int]map[string][]*jdyRecord),
		prefix:   uint32(start.Unix()),
		tx:       make(map[string]*txEntry),
		modified: start,
	}
}

// newID returns a 24-hex id that sorts after every earlier one.
func (st *jdyStore) newID() string {
	st.seq++
	return fmt.Sprintf("%08x%016x", st.prefix, st.seq)
}

// newRowID returns a subform row id; rows live in another id space.
func (st *jdyStore) newRowID() string {
	st.rowSeq++
	return fmt.Sprintf("%08x%016x", st.prefix^0xffffffff, st.rowSeq)
}

func (st *jdyStore) slot(name string) int {
	if i, ok := st.slots[name]; ok {
		return i
	}
	i := len(st.names)
	st.slots[name] = i
	st.names = append(st.names, name)
	return i
}

// valueKey is the equality key for filters and indexes; ok is false for
// empty values, which eq and in never match.
func valueKey(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return "s" + x, true
	case float64:
		return "n" + strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return "b" + strconv.FormatBool(x), true
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		return "j" + string(b), true
	}
}

func searchByID(list []*jdyRecord, id string) int {
	return sort.Search(len(list), func(i int) bool { return list[i].id >= id })
}

func insertSorted(list []*jdyRecord, r *jdyRecord) []*jdyRecord {
	i := searchByID(list, r.id)
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = r
	return list
}

func removeSorted(list []*jdyRecord, id string) []*jdyRecord {
	i := searchByID(list, id)
	if i < len(list) && list[i].id == id {
		list = append(list[:i], list[i+1:]...)
	}
	return list
}

// set stores v in r's slot and keeps an existing index in step.
func (st *jdyStore) set(r *jdyRecord, slot int, v any) {
	for len(r.vals) <= slot {
		r.vals = append(r.vals, nil)
	}
	if ix := st.idx[slot]; ix != nil {
		if k, ok := valueKey(r.vals[slot]); ok {
			ix[k] = removeSorted(ix[k], r.id)
			if len(ix[k]) == 0 {
				delete(ix, k)
			}
		}
		if k, ok := valueKey(v); ok {
			ix[k] = insertSorted(ix[k], r)
		}
	}
	r.vals[slot] = v
}

// index returns the slot's index, building it on first use.
func (st *jdyStore) index(slot int) map[string][]*jdyRecord {
	if ix := st.idx[slot]; ix != nil {
		return ix
	}
	ix := make(map[string][]*jdyRecord)
	for _, r := range st.recs {
		if k, ok := valueKey(r.get(slot)); ok {
			ix[k] = append(ix[k], r)
		}
	}
	st.idx[slot] = ix
	return ix
}

func (st *jdyStore) insert(fields []fieldVal, now time.Time, creator string, viaAPI bool) *jdyRecord {
	r := &jdyRecord{id: st.newID(), created: now, updated: now, creator: creator, updater: creator, viaAPI: viaAPI}
	st.recs = append(st.recs, r) // ids grow, so appending keeps the order
	st.byID[r.id] = r
	for _, f := range fields {
		st.slot(f.name)
	}
	r.vals = make([]any, len(st.names))
	for _, f := range fields {
		if f.val != nil {
			st.set(r, st.slots[f.name], f.val)
		}
	}
	st.modified = now
	return r
}

func (st *jdyStore) update(r *jdyRecord, fields []fieldVal, now time.Time) {
	for _, f := range fields {
		st.set(r, st.slot(f.name), f.val)
	}
	r.updated = now
	st.modified = now
}

func (st *jdyStore) remove(id string, now time.Time) bool {
	r, ok := st.byID[id]
	if !ok {
		return false
	}
	for slot := range st.idx {
		st.set(r, slot, nil)
	}
	delete(st.byID, id)
	st.recs = removeSorted(st.recs, id)
	st.modified = now
	return true
}

// addFields adds the record's form fields to m in read shape and returns m.
func (st *jdyStore) addFields(m map[string]any, r *jdyRecord) map[string]any {
	for slot, v := range r.vals {
		if v != nil {
			m[st.names[slot]] = cloneValue(v)
		}
	}
	return m
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneValue(e)
		}
		return out
	default:
		return v
	}
}

// normalize gives a Go value the types a JSON round trip would (float64
// numbers, []any, map[string]any), so test-inserted values compare like
// values written through the API.
func normalize(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Sprint(v)
	}
	return out
}

// Records returns every record, sorted by ID.
func (s *Server) Records() []Record {
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]Record, len(st.recs))
	for i, r := range st.recs {
		data := st.addFields(make(map[string]any, len(r.vals)), r)
		out[i] = Record{ID: r.id, Data: data, CreateTime: r.created, UpdateTime: r.updated,
			Creator: username(r.creator), Updater: username(r.updater)}
	}
	return out
}

// Duplicates returns the keys held by more than one record, each with its
// record ids ascending. Records without the field are ignored.
func (s *Server) Duplicates(keyField string) map[string][]string {
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	slot, ok := st.slots[keyField]
	out := make(map[string][]string)
	if !ok {
		return out
	}
	byKey := make(map[string][]string)
	for _, r := range st.recs {
		v := r.get(slot)
		if v == nil {
			continue
		}
		k := keyString(v)
		byKey[k] = append(byKey[k], r.id)
	}
	for k, ids := range byKey {
		if len(ids) > 1 {
			out[k] = ids
		}
	}
	return out
}

// EditRecord sets one field of a record directly, as a person editing the
// form would; value nil clears it. Unknown ids are ignored.
func (s *Server) EditRecord(id, field string, value any) {
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if r, ok := st.byID[id]; ok {
		st.update(r, []fieldVal{{field, normalize(value)}}, now)
	}
}

// InsertRecord adds a record directly (flat values, no validation) and
// returns its id, as if the enterprise creator had filled the form by hand.
func (s *Server) InsertRecord(data map[string]any) string { return s.InsertRecordBy("", data) }

// InsertRecordBy is InsertRecord with creator as the submitter, so tests
// can tell records people made from records the API made. "" is the
// enterprise creator. ListLag never hides such a record.
func (s *Server) InsertRecordBy(creator string, data map[string]any) string {
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	sort.Strings(names)
	fields := make([]fieldVal, len(names))
	for i, k := range names {
		fields[i] = fieldVal{k, normalize(data[k])}
	}
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	return st.insert(fields, now, creator, false).id
}

// DeleteRecord removes a record directly. Unknown ids are ignored.
func (s *Server) DeleteRecord(id string) {
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	st.remove(id, now)
}

// CountBy counts records per value of field, for asserting "exactly one
// record per key". Values are keyed as Duplicates keys them; records
// without the field are not counted.
func (s *Server) CountBy(field string) map[string]int {
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[string]int)
	slot, ok := st.slots[field]
	if !ok {
		return out
	}
	for _, r := range st.recs {
		if v := r.get(slot); v != nil {
			out[keyString(v)]++
		}
	}
	return out
}

// keyString is how Duplicates and CountBy name a field value.
func keyString(v any) string {
	if k, ok := v.(string); ok {
		return k
	}
	return fmt.Sprint(v)
}
