package quota

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// Quota notifications go to a Slack incoming webhook. Sending never blocks
// a request: each message is sent by its own goroutine, at most
// maxNotifySends at once (more are dropped and counted), retried with
// exponential backoff for a bounded number of attempts. The message names
// the user and the amounts, never anything they asked.

const maxNotifySends = 16

type notifier struct {
	log     *slog.Logger
	metrics *quotaMetrics
	client  *http.Client
	// attempts and backoff bound the retries: waits of backoff, 2×backoff …
	attempts int
	backoff  time.Duration
	slots    chan struct{}
	// sent, when set, is called after each message's last attempt (tests).
	sent func()
}

func newNotifier(log *slog.Logger, m *quotaMetrics) *notifier {
	return &notifier{
		log: log, metrics: m,
		client:   &http.Client{Timeout: 10 * time.Second},
		attempts: 6,
		backoff:  time.Second,
		slots:    make(chan struct{}, maxNotifySends),
	}
}

// send posts text to the webhook whose URL is in file, in the background.
// The file is read when sending, so a rotated Secret applies at once.
func (n *notifier) send(file, threshold, text string) {
	if file == "" {
		n.metrics.notifications.WithLabelValues(threshold, "unconfigured").Inc()
		return
	}
	select {
	case n.slots <- struct{}{}:
	default:
		n.metrics.notifications.WithLabelValues(threshold, "dropped").Inc()
		n.log.Warn("Dropped a quota notification: too many being sent", slog.String("threshold", threshold))
		return
	}
	go func() {
		defer func() { <-n.slots }()
		result := "sent"
		if err := n.post(file, text); err != nil {
			result = "failed"
			n.log.Warn("Failed to send a quota notification", slog.String("threshold", threshold), slog.String("error", err.Error()))
		}
		n.metrics.notifications.WithLabelValues(threshold, result).Inc()
		if n.sent != nil {
			n.sent()
		}
	}()
}

func (n *notifier) post(file, text string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading quotas.slackWebhookFile: %w", err)
	}
	url := strings.TrimSpace(string(raw))
	body, _ := json.Marshal(map[string]string{"text": text})
	wait := n.backoff
	var last error
	for i := range n.attempts {
		if i > 0 {
			time.Sleep(wait)
			wait *= 2
		}
		last = n.postOnce(url, body)
		if last == nil {
			return nil
		}
	}
	return fmt.Errorf("%d attempts: %w", n.attempts, last)
}

func (n *notifier) postOnce(url string, body []byte) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		// Never the URL in an error: a webhook URL is a credential.
		return fmt.Errorf("the webhook URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to the webhook failed")
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %d", resp.StatusCode)
	}
	return nil
}

func quotaMessage(gateway, user, threshold string, spent, limit metering.Picodollars, day string, loc *time.Location) string {
	if threshold == thresholdHard {
		return fmt.Sprintf("ChatGateway %s: %s has reached the daily hard limit of %s, having spent %s (%s, %s); requests that could cost more than what is left are refused until the day ends.",
			gateway, user, formatUSD(limit), formatUSD(spent), day, loc)
	}
	return fmt.Sprintf("ChatGateway %s: %s has spent %s, over the daily soft limit of %s (%s, %s).",
		gateway, user, formatUSD(spent), formatUSD(limit), day, loc)
}
