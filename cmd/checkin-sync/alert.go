package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/config"
	"checkin-sync/store"
	"checkin-sync/sync"
	"checkin-sync/wecom"
)

// alertState is kept in the store's meta so that a repeated failure is not
// announced again and again, and a recovery is announced once.
type alertState struct {
	Failing  bool      `json:"failing"`
	ExitCode int       `json:"exit_code"`
	APICode  int       `json:"api_code"`
	SentAt   time.Time `json:"sent_at"`
}

const (
	metaAlert    = "alert"
	alertRepeat  = 24 * time.Hour
	alertFailure = "failure"
	alertRecover = "recovery"
)

// decideAlert says which message, if any, a run with this exit code and
// first API error code should send. The same failure (same exit code, same
// first code) is sent again only after alertRepeat.
func decideAlert(prev alertState, exit, apiCode int, now time.Time) (kind string, next alertState) {
	failed := exit == exitPartial || exit == exitFatal
	switch {
	case failed:
		next = alertState{Failing: true, ExitCode: exit, APICode: apiCode, SentAt: prev.SentAt}
		if prev.Failing && prev.ExitCode == exit && prev.APICode == apiCode && now.Sub(prev.SentAt) < alertRepeat {
			return "", next
		}
		next.SentAt = now
		return alertFailure, next
	case exit == exitOK && prev.Failing:
		return alertRecover, alertState{SentAt: now}
	default:
		return "", prev
	}
}

func firstAPICode(s *sync.Summary) int {
	if c := apierr.CodeOf(s.Err); c != 0 {
		return c
	}
	return 0
}

// sendAlert sends the failure or recovery message a run calls for. Alert
// problems are logged, never turned into the run's exit code.
func sendAlert(ctx context.Context, cfg *config.Config, st *store.Store, log zerolog.Logger, s *sync.Summary, exit int) {
	if cfg.Alert == nil || cfg.Alert.WeComWebhook == "" {
		return
	}
	var prev alertState
	if raw, err := st.GetMeta(metaAlert); err == nil && len(raw) > 0 {
		_ = json.Unmarshal(raw, &prev)
	}
	kind, next := decideAlert(prev, exit, firstAPICode(s), time.Now())
	if kind != "" && alertWanted(cfg.Alert.On, kind) {
		robot := wecom.NewRobot(cfg.Alert.WeComWebhook, nil, log)
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := robot.SendMarkdown(actx, alertText(kind, s, exit)); err != nil {
			log.Warn().Err(err).Msg("could not send the alert")
			return
		}
		log.Info().Str("kind", kind).Msg("alert sent")
	}
	if b, err := json.Marshal(next); err == nil {
		if err := st.PutMeta(metaAlert, b); err != nil {
			log.Warn().Err(err).Msg("could not save the alert state")
		}
	}
}

func alertWanted(on []string, kind string) bool {
	if len(on) == 0 {
		return true
	}
	for _, k := range on {
		if k == kind {
			return true
		}
	}
	return false
}

// alertText is the robot's markdown; the robot client cuts it to 4096 bytes.
func alertText(kind string, s *sync.Summary, exit int) string {
	var b strings.Builder
	t := s.Totals()
	if kind == alertRecover {
		fmt.Fprintf(&b, "**checkin-sync recovered**\n>run %s: <font color=\"info\">success</font>\n", s.RunID)
	} else {
		outcome, _ := sync.Verdict(s)
		fmt.Fprintf(&b, "**checkin-sync failed** (exit %d)\n>run %s: <font color=\"warning\">%s</font>\n", exit, s.RunID, outcome)
	}
	var months []string
	for _, m := range s.Months {
		months = append(months, m.Month)
	}
	fmt.Fprintf(&b, ">months: %s\n>created %d, updated %d, unchanged %d, failed %d, pending %d, skipped %d\n",
		strings.Join(months, ", "), t.Created, t.Updated, t.Unchanged, t.Failed, t.Pending, t.Skipped)
	if s.Err != nil {
		fmt.Fprintf(&b, ">error: %s\n", s.Err)
	}
	for i, f := range s.Failures {
		if i == 10 {
			fmt.Fprintf(&b, ">… and %d more failed records\n", len(s.Failures)-i)
			break
		}
		fmt.Fprintf(&b, ">%s: %s\n", f.Key, f.Error)
	}
	return b.String()
}
