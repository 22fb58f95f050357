package fakeapi

import (
	"sync/atomic"

	"golang.org/x/time/rate"
)

// limiterSet holds the server-side token buckets: one per endpoint, at its
// class's documented rate, plus Jiandaoyun's enterprise-wide bucket. The
// real services count per API, so two endpoints of one class do not share.
// The buckets sit behind an atomic pointer so that SetLimits can swap them
// while requests run, and forms added by AddForm, which share the set,
// follow.
type limiterSet struct {
	cur atomic.Pointer[buckets]
}

// buckets is one generation of limits; it is read-only once built.
type buckets struct {
	limits     Limits
	byEndpoint map[string]*rate.Limiter
	jdyGlobal  *rate.Limiter
}

func bucket(perSecond float64, burst int) *rate.Limiter {
	if perSecond < 0 {
		return rate.NewLimiter(rate.Inf, burst)
	}
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

func newLimiterSet(o Options) *limiterSet {
	l := &limiterSet{}
	l.cur.Store(newBuckets(o))
	return l
}

func newBuckets(o Options) *buckets {
	b := o.Burst
	// A negative rate stays negative per second, so it is still unlimited.
	perMin := func(n float64) *rate.Limiter { return bucket(n/60, b) }
	return &buckets{
		limits: Limits{MonthDataPerMinute: o.MonthDataPerMinute, ListPerMinute: o.ListPerMinute, JDY: o.JDY},
		byEndpoint: map[string]*rate.Limiter{
			EndpointMonthData:    perMin(o.MonthDataPerMinute),
			EndpointDeptList:     perMin(o.ListPerMinute),
			EndpointUserList:     perMin(o.ListPerMinute),
			EndpointWidgets:      bucket(o.JDY.List, b),
			EndpointList:         bucket(o.JDY.List, b),
			EndpointGet:          bucket(o.JDY.List, b),
			EndpointCreate:       bucket(o.JDY.Create, b),
			EndpointDelete:       bucket(o.JDY.Create, b),
			EndpointUpdate:       bucket(o.JDY.Update, b),
			EndpointBatchCreate:  bucket(o.JDY.BatchCreate, b),
			EndpointBatchDelete:  bucket(o.JDY.BatchCreate, b),
			EndpointLegacyCreate: bucket(o.JDY.Legacy, b),
		},
		jdyGlobal: bucket(o.JDY.Global, b),
	}
}

// allow takes a token from the endpoint's bucket; endpoints without a
// bucket (gettoken, webhook/send) are never limited.
func (l *limiterSet) allow(ep string) bool {
	lim, ok := l.cur.Load().byEndpoint[ep]
	return !ok || lim.Allow()
}

// allowGlobal takes a token from Jiandaoyun's enterprise-wide bucket.
func (l *limiterSet) allowGlobal() bool { return l.cur.Load().jdyGlobal.Allow() }
