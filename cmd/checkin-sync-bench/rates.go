package main

import (
	"fmt"

	"checkin-sync/internal/fakeapi"
)

// rates are the limits of one run. The fakes enforce them and the tool is
// configured with the same ones, so a run that keeps to its configuration
// is never refused.
type rates struct {
	MonthDataPerMinute float64 // WeCom getcheckin_monthdata
	ListPerMinute      float64 // WeCom department/simplelist and user/simplelist
	BatchCreate        float64 // Jiandaoyun data/batch_create, per second
	List               float64 // Jiandaoyun data/list, per second
	Create             float64 // Jiandaoyun data/create, per second
	Update             float64 // Jiandaoyun data/update, per second
	Global             float64 // every Jiandaoyun call together, per second
	Legacy             float64 // Jiandaoyun's legacy /api/v2/.../data_create, per second
}

// documentedRates are the limits the two APIs publish.
func documentedRates() rates {
	return rates{MonthDataPerMinute: 60, ListPerMinute: 10000,
		BatchCreate: 10, List: 30, Create: 20, Update: 20, Global: 50, Legacy: 5}
}

func (r rates) times(k float64) rates {
	return rates{MonthDataPerMinute: r.MonthDataPerMinute * k, ListPerMinute: r.ListPerMinute * k,
		BatchCreate: r.BatchCreate * k, List: r.List * k, Create: r.Create * k, Update: r.Update * k,
		Global: r.Global * k, Legacy: r.Legacy * k}
}

// fakeLimits is r as the fakes take it.
func (r rates) fakeLimits() fakeapi.Limits {
	return fakeapi.Limits{MonthDataPerMinute: r.MonthDataPerMinute, ListPerMinute: r.ListPerMinute,
		JDY: fakeapi.JDYRates{Create: r.Create, BatchCreate: r.BatchCreate, Update: r.Update,
			List: r.List, Global: r.Global, Legacy: r.Legacy}}
}

// unlimitedFakes switches every server-side bucket off (negative is
// unlimited to the fakes), for setup loads whose time is not measured.
func unlimitedFakes() fakeapi.Limits {
	return fakeapi.Limits{MonthDataPerMinute: -1, ListPerMinute: -1,
		JDY: fakeapi.JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1, Legacy: -1}}
}

// unthrottledTool is the tool's configuration for setup loads: so high
// that its own pacing never waits.
func unthrottledTool() rates {
	const high = 1e6
	return rates{MonthDataPerMinute: high, ListPerMinute: high, BatchCreate: high, List: high,
		Create: high, Update: high, Global: high, Legacy: high}
}

func (r rates) String() string {
	return fmt.Sprintf("month data %s/min, listing %s/min, batch_create %s/s, data/list %s/s, create %s/s, update %s/s, global %s/s, legacy %s/s",
		num(r.MonthDataPerMinute), num(r.ListPerMinute), num(r.BatchCreate), num(r.List), num(r.Create),
		num(r.Update), num(r.Global), num(r.Legacy))
}
