package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"checkin-sync/internal/fakeapi"
)

// Endpoint names as the fakes count them.
const (
	epGetToken    = fakeapi.EndpointGetToken
	epDeptList    = fakeapi.EndpointDeptList
	epUserList    = fakeapi.EndpointUserList
	epMonthData   = fakeapi.EndpointMonthData
	epWidgets     = fakeapi.EndpointWidgets
	epList        = fakeapi.EndpointList
	epGet         = fakeapi.EndpointGet
	epCreate      = fakeapi.EndpointCreate
	epBatchCreate = fakeapi.EndpointBatchCreate
	epUpdate      = fakeapi.EndpointUpdate
	epDelete      = fakeapi.EndpointDelete
	epBatchDelete = fakeapi.EndpointBatchDelete
	epLegacy      = fakeapi.EndpointLegacyCreate
)

// counts are requests per endpoint.
type counts map[string]int

// minus is the requests made between two snapshots.
func (c counts) minus(before counts) counts {
	out := counts{}
	for ep, n := range c {
		if d := n - before[ep]; d != 0 {
			out[ep] = d
		}
	}
	return out
}

func (c counts) listing() int { return c[epDeptList] + c[epUserList] }

// writes are the calls that change the form.
func (c counts) writes() int {
	return c[epBatchCreate] + c[epCreate] + c[epUpdate] + c[epDelete] + c[epBatchDelete] + c[epLegacy]
}

func (c counts) String() string {
	names := make([]string, 0, len(c))
	for ep := range c {
		names = append(names, ep)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, ep := range names {
		parts[i] = fmt.Sprintf("%s %d", ep, c[ep])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// floorTerm is one of the bounds the floor is the largest of.
type floorTerm struct {
	Name  string
	Calls int
	Rate  float64 // calls a second
	Time  time.Duration
}

func (t floorTerm) String() string {
	return fmt.Sprintf("%s %d ÷ %s/s = %s", t.Name, t.Calls, num(t.Rate), secs(t.Time))
}

// loadFloor is the shortest time an initial load can take under the
// limits: the slowest of the rate-limited streams, all running at once
// (listing overlaps fetching, fetching overlaps writing), plus one fill and
// drain of the pipeline when the APIs answer with latency.
type loadFloor struct {
	Terms     []floorTerm
	Bound     floorTerm // the largest term
	FillDrain time.Duration
	Total     time.Duration
}

// lookupsPerBatch are the data/list calls the create protocol needs for
// each batch: one before the create and one after it.
const lookupsPerBatch = 2

// computeFloor takes the call counts of the run from the fakes' counters;
// the lookup calls are the ones the protocol requires, not the ones made.
func computeFloor(c counts, r rates, fillDrain time.Duration) loadFloor {
	bc := c[epBatchCreate]
	lookups := lookupsPerBatch * bc
	terms := []floorTerm{
		term("month data", c[epMonthData], r.MonthDataPerMinute/60),
		term("listing", c.listing(), r.ListPerMinute/60),
		term("batch_create", bc, r.BatchCreate),
		term("lookups", lookups, r.List),
		term("batch_create+lookups (global)", bc+lookups, r.Global),
	}
	f := loadFloor{Terms: terms, FillDrain: fillDrain}
	for _, t := range terms {
		if t.Time > f.Bound.Time || f.Bound.Name == "" {
			f.Bound = t
		}
	}
	f.Total = f.Bound.Time + fillDrain
	return f
}

func term(name string, calls int, perSecond float64) floorTerm {
	t := floorTerm{Name: name, Calls: calls, Rate: perSecond}
	if perSecond > 0 && !math.IsInf(perSecond, 0) {
		t.Time = time.Duration(float64(calls) / perSecond * float64(time.Second))
	}
	return t
}

func (f loadFloor) String() string {
	s := f.Bound.String()
	if f.FillDrain > 0 {
		s += " + fill and drain " + secs(f.FillDrain)
	}
	return s
}

// fillAndDrain is one trip through the pipeline from the start of a run,
// at mean latency: the listing chain, a WeCom fetch, then the three
// Jiandaoyun calls of a batch (lookup, create, lookup).
//
// The chain is in it because no run can fetch a report before it knows a
// userid, nor know one before two WeCom answers in a row. Without it, the
// fill is the one the performance issue first defined (fetchFillAndDrain),
// which no client can reach: with the first create after the chain, a
// fetch and a lookup, creates at exactly the limit and the last batch's
// create and lookup after them, a perfect run takes 1.12 × that floor at
// the bench's latencies.
func fillAndDrain(wecom, jdy fakeapi.LatencyRange) time.Duration {
	return listingChain(wecom) + fetchFillAndDrain(wecom, jdy)
}

// perfectRun is the shortest write-bound run under latency: one fill and
// drain (the chain, a fetch and a lookup before the first create, the last
// batch's create and lookup after the last), with the creates between
// paced at exactly their rate.
func perfectRun(creates int, r rates, wecom, jdy fakeapi.LatencyRange) time.Duration {
	paced := time.Duration(float64(max(creates-1, 0)) / r.BatchCreate * float64(time.Second))
	return fillAndDrain(wecom, jdy) + paced
}

// fetchFillAndDrain is the fill and drain from the first fetch on.
func fetchFillAndDrain(wecom, jdy fakeapi.LatencyRange) time.Duration {
	return meanLatency(wecom) + (lookupsPerBatch+1)*meanLatency(jdy)
}

func meanLatency(r fakeapi.LatencyRange) time.Duration { return (r.Min + r.Max) / 2 }

// listingChain is the WeCom answers that must come one after another
// before the first userid is known: the access token, then a department's
// members (the root's are asked for alongside the department walk).
func listingChain(wecom fakeapi.LatencyRange) time.Duration { return 2 * meanLatency(wecom) }

// rerunFloor is what a sync over a lost store must at least take when it
// adopts every record: its lookups at the list rate, after fetching at the
// month-data rate. The sum, not the larger: it is the target's reference,
// generous to the tool, which may overlap the two.
func rerunFloor(c counts, r rates) (time.Duration, string) {
	look := term("data/list", c[epList], r.List)
	fetch := term("month data", c[epMonthData], r.MonthDataPerMinute/60)
	return look.Time + fetch.Time, look.String() + " + " + fetch.String()
}

// verifyFloor is the time to read records in pages of 100 at the list
// rate.
func verifyFloor(records int, r rates) time.Duration {
	return time.Duration(float64(records) / 100 / r.List * float64(time.Second))
}

func num(v float64) string {
	if math.IsInf(v, 1) || v < 0 {
		return "unlimited"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
