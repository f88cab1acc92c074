package quota

import (
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// reservationMargin is added to failover.requestTimeout for a charge's
// lifetime: no request outlives the timeout, so an unsettled charge older
// than that belongs to a dead process.
const reservationMargin = time.Minute

// Limits are one user's daily limits. A zero Soft means no soft limit.
// HasHard says a hard limit is set, and then Hard may be zero: an admin's
// "0" refuses every request, which is not the same as no limit at all.
type Limits struct {
	Soft, Hard metering.Picodollars
	HasHard    bool
}

// None reports that no limit is set.
func (l Limits) None() bool { return l.Soft == 0 && !l.HasHard }

// Policy is the quota config of one snapshot, resolved once.
type Policy struct {
	gateway   string // namespace/name, for notifications
	loc       *time.Location
	defaults  Limits
	users     map[string]Limits
	costAware bool
	ttl       time.Duration
	webhook   string // file holding the Slack webhook URL
}

// NewPolicy resolves the quota settings of a validated config.
func NewPolicy(c *gatewayconfig.Config) *Policy {
	p := &Policy{
		gateway:   c.Gateway.Namespace + "/" + c.Gateway.Name,
		defaults:  Limits{Soft: usdLimit(c.Quotas.DailySoftUSD), Hard: usdLimit(c.Quotas.DailyHardUSD), HasHard: c.Quotas.DailyHardUSD != ""},
		users:     map[string]Limits{},
		costAware: c.Quotas.CostAwareFallback,
		ttl:       c.Failover.RequestTimeout.Duration + reservationMargin,
		webhook:   c.Quotas.SlackWebhookFile,
	}
	// The config is validated: the zone loads.
	p.loc, _ = time.LoadLocation(c.Quotas.TimeZone)
	if p.loc == nil {
		p.loc = time.UTC
	}
	for _, u := range c.Users {
		l := p.defaults
		if u.DailySoftUSD != "" {
			l.Soft = usdLimit(u.DailySoftUSD)
		}
		// Unset inherits the default; "0" is a limit of nothing.
		if u.DailyHardUSD != "" {
			l.Hard, l.HasHard = usdLimit(u.DailyHardUSD), true
		}
		p.users[u.Email] = l
	}
	return p
}

// usdLimit converts a validated decimal dollar string; MicroUSD × 1e6 is
// picodollars exactly.
func usdLimit(s string) metering.Picodollars {
	if s == "" {
		return 0
	}
	v, _ := gatewayconfig.ParseUSD(s)
	return metering.Picodollars(v) * 1_000_000
}

// Limits are email's daily limits: their own, else the defaults.
func (p *Policy) Limits(email string) Limits {
	if l, ok := p.users[email]; ok {
		return l
	}
	return p.defaults
}

// CostAware reports quotas.costAwareFallback: admission covers the first
// route of a plan only, and a pricier retry must be covered first.
func (p *Policy) CostAware() bool { return p.costAware }

// Location is the time zone of the quota day.
func (p *Policy) Location() *time.Location { return p.loc }

// Window is the quota day containing now, in the configured zone: its
// start, the next day's start and its date. Days are calendar days, so a
// daylight-saving change makes one 23 or 25 hours long.
func (p *Policy) Window(now time.Time) (start, end time.Time, day string) {
	y, m, d := now.In(p.loc).Date()
	start = time.Date(y, m, d, 0, 0, 0, 0, p.loc)
	end = time.Date(y, m, d+1, 0, 0, 0, 0, p.loc)
	return start, end, start.Format(time.DateOnly)
}
