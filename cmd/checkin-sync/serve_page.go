package main

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"checkin-sync/store"
	"checkin-sync/sync"
)

//go:embed serve_page.html
var pageSource string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"dash":  orDash,
	"short": shortTime,
}).Parse(pageSource))

// pageData is what the status page shows: counts only, never a name or a
// userid.
type pageData struct {
	Now       string
	Health    string // ok, failing
	Running   bool
	Progress  string // "123 of 600 user-months", while a run is going
	LastRun   *pageRun
	NextRun   string
	Every     string
	Status    sync.Status
	Pendings  []string
	Runs      []pageRun
	Chart     chart
	StoreNote string // why the store could not be read, when it could not
}

type pageRun struct {
	ID, Started, Duration, Outcome, Months                string
	ExitCode                                              int
	Created, Updated, Unchanged, Failed, Skipped, Fetched int
}

// chart is a stacked bar per run, oldest on the left.
type chart struct {
	Width, Height, Left, Top, Mid, Base int
	Bars                                []chartBar
	Max, HalfMax                        int
	Empty                               bool
}

type chartBar struct {
	X, W                   float64
	Segs                   []chartSeg
	Label                  string
	Title                  string
	ShowLabel              bool
	LabelX                 float64
	Created, Up, Unchanged int
}

type chartSeg struct {
	Y, H  float64
	Class string
}

const (
	chartW, chartH = 640, 180
	chartLeft      = 34 // room for the y labels
	chartTop       = 10
	chartBottom    = 22 // room for the x labels
	chartMinSlots  = 10 // a few runs do not make one wide bar each
)

func buildChart(runs []store.Run, loc *time.Location) chart {
	c := chart{Width: chartW, Height: chartH, Left: chartLeft, Base: chartH - chartBottom, Top: chartTop, Mid: (chartTop + chartH - chartBottom) / 2}
	// runs are newest first; the chart reads left to right.
	var rs []store.Run
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Command == "" || runs[i].Command == "sync" {
			rs = append(rs, runs[i])
		}
	}
	if len(rs) == 0 {
		c.Empty = true
		return c
	}
	for _, r := range rs {
		if n := r.Created + r.Updated + r.Unchanged; n > c.Max {
			c.Max = n
		}
	}
	c.HalfMax = c.Max / 2
	plotH := float64(chartH - chartTop - chartBottom)
	slots := max(len(rs), chartMinSlots)
	slot := float64(chartW-chartLeft) / float64(slots)
	every := 1
	if len(rs) > chartMinSlots {
		every = (len(rs) + 6) / 7 // labels stay apart
	}
	for i, r := range rs {
		b := chartBar{X: chartLeft + float64(i)*slot + slot*0.15, W: slot * 0.7}
		b.LabelX = b.X + b.W/2
		b.Label = r.Start.In(loc).Format("15:04")
		b.ShowLabel = i%every == 0
		b.Title = fmt.Sprintf("%s: %d created, %d updated, %d unchanged", r.Start.In(loc).Format("2006-01-02 15:04"), r.Created, r.Updated, r.Unchanged)
		y := float64(chartH - chartBottom)
		for _, s := range []struct {
			n     int
			class string
		}{{r.Unchanged, "unchanged"}, {r.Updated, "updated"}, {r.Created, "created"}} {
			if s.n == 0 || c.Max == 0 {
				continue
			}
			h := plotH * float64(s.n) / float64(c.Max)
			if h < 2 {
				h = 2 // a few records stay visible next to thousands
			}
			y -= h
			b.Segs = append(b.Segs, chartSeg{Y: y, H: h, Class: s.class})
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

func (s *server) pageData() pageData {
	st, runs, err := s.readStore()
	loc := s.cfg.Location
	h, _ := s.health()
	d := pageData{Now: time.Now().In(loc).Format("2006-01-02 15:04:05 MST"), Health: h.Status, Running: h.Running,
		Every: s.every.String()}
	if err != nil {
		d.StoreNote = "The store could not be read just now: " + oneLine(err.Error())
	} else {
		d.Status = st
		if r := st.Running; r != nil && r.Total > 0 {
			d.Progress = fmt.Sprintf("%d of %d user-months done", r.Done, r.Total)
		}
		for _, m := range st.Months {
			if line := pendingLine(m); line != "" {
				d.Pendings = append(d.Pendings, line)
			}
		}
	}
	s.mu.Lock()
	if runs != nil {
		s.runs = runs
	} else {
		runs = s.runs
	}
	if s.last != nil {
		d.LastRun = &pageRun{ID: s.last.ID, Started: s.last.Started.In(loc).Format("2006-01-02 15:04:05"),
			Duration: s.last.Finished.Sub(s.last.Started).Round(10 * time.Millisecond).String(),
			Outcome:  s.last.Outcome, ExitCode: s.last.ExitCode}
	}
	s.mu.Unlock()
	d.NextRun = h.NextRun
	if t, err := time.Parse(time.RFC3339, h.NextRun); err == nil {
		d.NextRun = t.In(loc).Format("15:04:05")
	}
	for _, r := range runs {
		pr := pageRun{ID: r.ID, Started: r.Start.In(loc).Format("01-02 15:04:05"), Duration: "-", Outcome: r.Outcome,
			Months: strings.Join(r.Months, ", "), ExitCode: r.ExitCode, Created: r.Created, Updated: r.Updated,
			Unchanged: r.Unchanged, Failed: r.Failed, Skipped: r.Skipped, Fetched: r.Fetched}
		if !r.End.IsZero() {
			pr.Duration = r.End.Sub(r.Start).Round(10 * time.Millisecond).String()
		}
		d.Runs = append(d.Runs, pr)
	}
	d.Chart = buildChart(runs, loc)
	return d
}

func (s *server) handlePage(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	if err := pageTemplate.Execute(&b, s.pageData()); err != nil {
		s.log.Error().Err(err).Msg("status page")
		http.Error(w, "the status page failed to render; see the log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(b.String()))
}

// shortTime shows an RFC 3339 time as "01-02 15:04"; anything else as is,
// and nil as "-".
func shortTime(s *string) string {
	if s == nil {
		return "-"
	}
	if t, err := time.Parse(time.RFC3339, *s); err == nil {
		return t.Format("01-02 15:04")
	}
	return *s
}
