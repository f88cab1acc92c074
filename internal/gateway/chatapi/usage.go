package chatapi

import (
	"net/http"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func (a *API) usageRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/me/usage", a.authed(a.serveMyUsage))
	m.HandleFunc("GET /api/admin/usage", a.authed(a.serveAdminUsage))
	m.HandleFunc("GET /api/me/audit", a.authed(a.serveMyAudit))
}

// usageRange reads ?from=YYYY-MM-DD&to=YYYY-MM-DD (to inclusive) as local
// days in the quota time zone; the default is the last 30 days.
func (a *API) usageRange(w http.ResponseWriter, r *http.Request, c *Call) (from, to time.Time, loc *time.Location, ok bool) {
	loc = time.UTC
	if tz := c.Config.Quotas.TimeZone; tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	now := a.now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	from, to = today.AddDate(0, 0, -29), today.AddDate(0, 0, 1)
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		dst  *time.Time
		add  int
	}{{"from", &from, 0}, {"to", &to, 1}} {
		if v := q.Get(p.name); v != "" {
			d, err := time.ParseInLocation(time.DateOnly, v, loc)
			if err != nil {
				writeAPIError(w, http.StatusBadRequest, p.name+" must be a date such as 2026-01-31")
				return from, to, loc, false
			}
			*p.dst = d.AddDate(0, 0, p.add)
		}
	}
	if !from.Before(to) {
		writeAPIError(w, http.StatusBadRequest, "from must not be after to")
		return from, to, loc, false
	}
	return from, to, loc, true
}

type dayUsage struct {
	store.DayUsage
	CostUSD string `json:"costUSD"`
}

type myUsage struct {
	TimeZone string     `json:"timeZone"`
	From     string     `json:"from"`
	To       string     `json:"to"`
	Days     []dayUsage `json:"days"`
	TotalUSD string     `json:"totalUSD"`
	// Quota is today's window: what the caller spent, what requests in
	// flight hold, the limits and what remains.
	Quota myQuota `json:"quota"`
}

// myQuota is QuotaStatus in dollars. Empty limits mean none is set.
type myQuota struct {
	Day          string    `json:"day"`
	ResetsAt     time.Time `json:"resetsAt"`
	SpentUSD     string    `json:"spentUSD"`
	ReservedUSD  string    `json:"reservedUSD"`
	DailySoftUSD string    `json:"dailySoftUSD,omitempty"`
	DailyHardUSD string    `json:"dailyHardUSD,omitempty"`
	RemainingUSD string    `json:"remainingUSD,omitempty"`
}

func quotaInDollars(q quota.Status) myQuota {
	out := myQuota{Day: q.Day, ResetsAt: q.ResetsAt,
		SpentUSD: metering.Picodollars(q.SpentPicodollars).String(), ReservedUSD: metering.Picodollars(q.ReservedPicodollars).String()}
	if q.SoftLimitPicodollars > 0 {
		out.DailySoftUSD = metering.Picodollars(q.SoftLimitPicodollars).String()
	}
	if q.RemainingPicodollars >= 0 { // a hard limit is set, perhaps to zero
		out.DailyHardUSD = metering.Picodollars(q.HardLimitPicodollars).String()
	}
	if q.RemainingPicodollars >= 0 {
		out.RemainingUSD = metering.Picodollars(q.RemainingPicodollars).String()
	}
	return out
}

func (a *API) serveMyUsage(w http.ResponseWriter, r *http.Request, c *Call) {
	from, to, loc, ok := a.usageRange(w, r, c)
	if !ok {
		return
	}
	days, err := a.store.UsageByDay(r.Context(), c.Caller.Email, from, to, loc)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	out := myUsage{TimeZone: loc.String(), From: from.Format(time.DateOnly), To: to.AddDate(0, 0, -1).Format(time.DateOnly), Days: []dayUsage{}}
	var total metering.Picodollars
	for _, d := range days {
		out.Days = append(out.Days, dayUsage{DayUsage: d, CostUSD: metering.Picodollars(d.CostPicodollars).String()})
		total += metering.Picodollars(d.CostPicodollars)
	}
	out.TotalUSD = total.String()
	q, err := a.quotas.Status(r.Context(), c.Snapshot.Quotas, c.Caller.Email)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	out.Quota = quotaInDollars(q)
	writeJSON(w, http.StatusOK, out)
}

type userUsage struct {
	store.UserUsage
	CostUSD string `json:"costUSD"`
}

type adminUsage struct {
	TimeZone string      `json:"timeZone"`
	From     string      `json:"from"`
	To       string      `json:"to"`
	Users    []userUsage `json:"users"`
}

// serveAdminUsage shows admins counts and cost per user: the ledger has no
// content to show.
func (a *API) serveAdminUsage(w http.ResponseWriter, r *http.Request, c *Call) {
	if !c.IsAdmin() {
		writeAPIError(w, http.StatusForbidden, "usage of other users is for admins")
		return
	}
	from, to, loc, ok := a.usageRange(w, r, c)
	if !ok {
		return
	}
	users, err := a.store.UsageByUser(r.Context(), from, to)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	out := adminUsage{TimeZone: loc.String(), From: from.Format(time.DateOnly), To: to.AddDate(0, 0, -1).Format(time.DateOnly), Users: []userUsage{}}
	for _, u := range users {
		out.Users = append(out.Users, userUsage{UserUsage: u, CostUSD: metering.Picodollars(u.CostPicodollars).String()})
	}
	writeJSON(w, http.StatusOK, out)
}

// serveMyAudit shows the caller every privileged access to their data.
func (a *API) serveMyAudit(w http.ResponseWriter, r *http.Request, c *Call) {
	events, err := a.store.AuditFor(r.Context(), c.Caller.Email, 500)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Events []store.AuditEvent `json:"events"`
	}{events})
}
