package fakeapi

import (
	"golang.org/x/time/rate"
)

// limiterSet holds the server-side token buckets: one per endpoint, at its
// class's documented rate, plus Jiandaoyun's enterprise-wide bucket. The
// real services count per API, so two endpoints of one class do not share.
type limiterSet struct {
	byEndpoint map[string]*rate.Limiter // read-only after construction
	jdyGlobal  *rate.Limiter
}

func bucket(perSecond float64, burst int) *rate.Limiter {
	if perSecond < 0 {
		return rate.NewLimiter(rate.Inf, burst)
	}
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

func newLimiterSet(o Options) *limiterSet {
	b := o.Burst
	// A negative rate stays negative per second, so it is still unlimited.
	perMin := func(n float64) *rate.Limiter { return bucket(n/60, b) }
	return &limiterSet{
		byEndpoint: map[string]*rate.Limiter{
			epMonthData:    perMin(o.MonthDataPerMinute),
			epDeptList:     perMin(o.ListPerMinute),
			epUserList:     perMin(o.ListPerMinute),
			epWidgets:      bucket(o.JDY.List, b),
			epList:         bucket(o.JDY.List, b),
			epGet:          bucket(o.JDY.List, b),
			epCreate:       bucket(o.JDY.Create, b),
			epDelete:       bucket(o.JDY.Create, b),
			epUpdate:       bucket(o.JDY.Update, b),
			epBatchCreate:  bucket(o.JDY.BatchCreate, b),
			epBatchDelete:  bucket(o.JDY.BatchCreate, b),
			epLegacyCreate: bucket(o.JDY.Legacy, b),
		},
		jdyGlobal: bucket(o.JDY.Global, b),
	}
}

// allow takes a token from the endpoint's bucket; endpoints without a
// bucket (gettoken, webhook/send) are never limited.
func (l *limiterSet) allow(ep string) bool {
	lim, ok := l.byEndpoint[ep]
	return !ok || lim.Allow()
}

// allowGlobal takes a token from Jiandaoyun's enterprise-wide bucket.
func (l *limiterSet) allowGlobal() bool { return l.jdyGlobal.Allow() }
