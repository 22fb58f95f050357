package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// boundMapper is the mapping the tool runs with, bound to the fakes' form.
func boundMapper(spec mapping.Spec) (*mapping.Mapper, error) {
	compiled, err := mapping.Compile(spec)
	if err != nil {
		return nil, err
	}
	return compiled.Bind(mappingWidgets(fakeapi.DefaultWidgets()))
}

func mappingWidgets(ws []fakeapi.Widget) []mapping.Widget {
	out := make([]mapping.Widget, len(ws))
	for i, w := range ws {
		out[i] = mapping.Widget{Name: w.Name, WidgetName: w.WidgetName, Label: w.Label, Type: w.Type, Items: mappingWidgets(w.Items)}
	}
	return out
}

// localBatch is the unit of an unchanged rerun's local work: the reports
// of one month-data call.
const localBatch = 100

// localCostPerRecord measures, in this process, the tool's own work per
// record of an unchanged rerun: mapping and hashing each report of a batch
// of 100, then one store lookup of the batch, whose hashes all match.
// The reports are decoded beforehand, as the target leaves JSON decoding
// out; the store holds users records of one month, in a file in dir.
// The answer is in microseconds.
func localCostPerRecord(dir string, seed int64, spec mapping.Spec, users int, m month.Month) (float64, error) {
	if users < localBatch {
		return 0, fmt.Errorf("local cost: %d users, want at least %d", users, localBatch)
	}
	mapper, err := boundMapper(spec)
	if err != nil {
		return 0, err
	}
	company := fakeapi.NewCompany(seed, users)
	var inputs []mapping.Input
	for _, u := range company.Users() {
		row, err := asWeComDecodes(company.Report(u.UserID, m))
		if err != nil {
			return 0, err
		}
		inputs = append(inputs, mapping.Input{UserID: u.UserID, Month: m, Report: row})
	}
	st, err := store.Open(filepath.Join(dir, "local-cost.db"), store.Options{Command: "bench"})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	ids := make([]string, len(inputs))
	synced := time.Now().UTC().Truncate(time.Second)
	for i := 0; i < len(inputs); i += localBatch {
		w := &store.Write{}
		for j := i; j < min(i+localBatch, len(inputs)); j++ {
			res, err := mapper.Map(inputs[j])
			if err != nil {
				return 0, err
			}
			ids[j] = strings.ToLower(inputs[j].UserID)
			w.Records = append(w.Records, store.KeyedRecord{Month: m.String(), UserID: ids[j], Record: store.Record{
				Hash: res.Hash, DataID: fmt.Sprintf("%024x", 0x65f3a0000000+j), State: store.StateSynced,
				Attempts: 1, SyncedAt: synced,
			}})
		}
		if err := st.Apply(w); err != nil {
			return 0, err
		}
	}

	var benchErr error
	result := testing.Benchmark(func(b *testing.B) {
		hashes := make([]uint64, localBatch)
		recs := make([]store.Record, localBatch)
		found := make([]bool, localBatch)
		batches := len(inputs) / localBatch // whole batches only, so each op is 100 records
		next := 0
		for b.Loop() {
			at := next * localBatch
			end := at + localBatch
			next = (next + 1) % batches
			for k := at; k < end; k++ {
				res, err := mapper.Map(inputs[k])
				if err != nil {
					benchErr = err
					b.FailNow()
				}
				hashes[k-at] = res.Hash
			}
			if err := st.Lookup(m.String(), ids[at:end], recs, found); err != nil {
				benchErr = err
				b.FailNow()
			}
			for k := range end - at {
				if !found[k] || recs[k].Hash != hashes[k] {
					benchErr = fmt.Errorf("record %s: stored hash does not match", ids[at+k])
					b.FailNow()
				}
			}
		}
	})
	if benchErr != nil {
		return 0, benchErr
	}
	if result.N == 0 {
		return 0, fmt.Errorf("local cost: the benchmark did not run")
	}
	return float64(result.T.Nanoseconds()) / float64(result.N*localBatch) / 1e3, nil
}

// asWeComDecodes turns a fake report into what the tool's WeCom client
// hands the mapping: decoded from JSON with numbers as json.Number.
func asWeComDecodes(row map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(row)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out map[string]any
	err = dec.Decode(&out)
	return out, err
}

// changedByBump counts the records whose mapped content changes when every
// report of the months moves to its next version, as the fakes' bump does.
// Almost all do; a report can come out the same, and the tool rightly
// leaves its record alone.
func changedByBump(seed int64, users int, months []month.Month, spec mapping.Spec) (int, error) {
	mapper, err := boundMapper(spec)
	if err != nil {
		return 0, err
	}
	company := fakeapi.NewCompany(seed, users)
	hash := func(userid string, m month.Month) (uint64, error) {
		row, err := asWeComDecodes(company.Report(userid, m))
		if err != nil {
			return 0, err
		}
		res, err := mapper.Map(mapping.Input{UserID: userid, Month: m, Report: row})
		return res.Hash, err
	}
	n := 0
	for _, u := range company.Users() {
		for _, m := range months {
			before, err := hash(u.UserID, m)
			if err != nil {
				return 0, err
			}
			company.Bump(u.UserID, m)
			after, err := hash(u.UserID, m)
			if err != nil {
				return 0, err
			}
			if after != before {
				n++
			}
		}
	}
	return n, nil
}
