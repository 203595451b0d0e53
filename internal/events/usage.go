package events

import (
	"cmp"
	"math"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// HoursPerMonth is the month the storage price is quoted for (GCP bills 730 hours a month).
const HoursPerMonth = 730.0

// Category is how a state is billed.
type Category int

// The categories.
const (
	// NotBilled: the session does not exist (deleted) or its state is unknown.
	NotBilled Category = iota
	// Running: a pod is (meant to be) up: creating, running, waking.
	Running
	// Sleeping: scaled to zero, the volume kept.
	Sleeping
	// Stopped: no pod, the volume kept, and not by the user's choice: deleting (the backup
	// runs) or failed.
	Stopped
)

// CategoryOf returns how state s is billed.
func CategoryOf(s session.State) Category {
	switch s {
	case session.StateCreating, session.StateRunning, session.StateWaking:
		return Running
	case session.StateSleeping:
		return Sleeping
	case session.StateDeleting, session.StateFailed:
		return Stopped
	}
	return NotBilled
}

// Point is one step of a session's timeline: from At on, the session is in State with a
// volume of Storage. Seq orders points with the same time (commit order). SleptBy is why the
// idle sweep put it to sleep, on the point of a "slept" event it made ("" otherwise).
type Point struct {
	At      time.Time
	Seq     int64
	State   session.State
	Storage string
	SleptBy session.SleepReason
}

// Span is a stretch of time a session spent in one state; SleptBy is why it fell asleep, for
// a sleeping span (kept across events that leave it asleep, an update say).
type Span struct {
	State   session.State
	Start   time.Time
	End     time.Time
	Storage string
	SleptBy session.SleepReason
}

// Spans turns a timeline into consecutive spans, none past end: each point's state lasts
// until the next point, and the last one until end (a point at or after end, a deleted state
// and a zero-length state have no span). Points need not be sorted; time before the first point is unknown and has no
// span.
func Spans(points []Point, end time.Time) []Span {
	pts := slices.Clone(points)
	slices.SortStableFunc(pts, func(a, b Point) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	var out []Span
	var cause session.SleepReason
	for i, p := range pts {
		switch {
		case p.State != session.StateSleeping:
			cause = ""
		case p.SleptBy != "" || i == 0 || pts[i-1].State != session.StateSleeping:
			cause = p.SleptBy
		}
		stop := end
		if i+1 < len(pts) && pts[i+1].At.Before(end) {
			stop = pts[i+1].At
		}
		if p.State == session.StateDeleted || !stop.After(p.At) {
			continue
		}
		out = append(out, Span{State: p.State, Start: p.At, End: stop, Storage: p.Storage, SleptBy: cause})
	}
	return out
}

// Clip returns how much of [start, end) falls within [from, to); a zero from or to leaves that
// side open.
func Clip(start, end, from, to time.Time) time.Duration {
	if !from.IsZero() && start.Before(from) {
		start = from
	}
	if !to.IsZero() && end.After(to) {
		end = to
	}
	if !end.After(start) {
		return 0
	}
	return end.Sub(start)
}

// Prices are what the usage report charges.
type Prices struct {
	PerRunningHour float64 `json:"per_running_hour"`
	PerGBMonth     float64 `json:"storage_per_gb_month"`
	Currency       string  `json:"currency"`
}

// Usage is the time and the estimated cost of one session, one user or everything, within a
// window.
type Usage struct {
	Running  time.Duration `json:"-"`
	Sleeping time.Duration `json:"-"`
	Stopped  time.Duration `json:"-"`
	// GiBHours is the volume kept, in GiB × hours (any state but deleted).
	GiBHours float64 `json:"-"`
	// SavedByCap is the time asleep after the idle sweep's connected_cap sleeps (a tab still
	// connected, nobody using it for idle_connected_max), from each such sleep to the next
	// change of state or the window's end: what the heartbeat rule alone would have kept
	// running. It is an upper bound: the user might have closed the tab (and the heartbeat
	// rule slept it) sooner.
	SavedByCap time.Duration `json:"-"`

	RunningHours  float64 `json:"running_hours"`
	SleepingHours float64 `json:"sleeping_hours"`
	// StoppedHours: deleting (a backup running) or failed; no pod, the volume kept.
	StoppedHours float64 `json:"stopped_hours"`
	// LifetimeHours is running + sleeping + stopped: what always-on would have run.
	LifetimeHours   float64 `json:"lifetime_hours"`
	StorageGBMonths float64 `json:"storage_gb_months"`
	ComputeCost     float64 `json:"compute_cost"`
	StorageCost     float64 `json:"storage_cost"`
	// Cost is the estimate: running hours × the hourly price + the storage.
	Cost float64 `json:"estimated_cost"`
	// AlwaysOnCost is what the same sessions would have cost running their whole lifetime.
	AlwaysOnCost float64 `json:"always_on_cost"`
	// SavingsPercent is 100 × (always-on − actual) / always-on; with no prices, the share of
	// the lifetime not spent running.
	SavingsPercent float64 `json:"savings_percent"`
	// SleptByCap counts the connected_cap sleeps within the window; SavedHours is SavedByCap
	// in hours (part of SleepingHours).
	SleptByCap int     `json:"slept_by_cap"`
	SavedHours float64 `json:"saved_hours"`
}

// Lifetime is the time the session existed within the window (every billed state).
func (u *Usage) Lifetime() time.Duration { return u.Running + u.Sleeping + u.Stopped }

// Add sums o into u (call Finish after).
func (u *Usage) Add(o Usage) {
	u.Running += o.Running
	u.Sleeping += o.Sleeping
	u.Stopped += o.Stopped
	u.GiBHours += o.GiBHours
	u.SavedByCap += o.SavedByCap
	u.SleptByCap += o.SleptByCap
}

// Finish computes the hours, costs and savings from the durations.
func (u *Usage) Finish(p Prices) {
	u.RunningHours = u.Running.Hours()
	u.SleepingHours = u.Sleeping.Hours()
	u.StoppedHours = u.Stopped.Hours()
	u.SavedHours = u.SavedByCap.Hours()
	life := u.Lifetime()
	u.LifetimeHours = life.Hours()
	u.StorageGBMonths = u.GiBHours / HoursPerMonth
	u.ComputeCost = u.RunningHours * p.PerRunningHour
	u.StorageCost = u.StorageGBMonths * p.PerGBMonth
	u.Cost = u.ComputeCost + u.StorageCost
	u.AlwaysOnCost = u.LifetimeHours*p.PerRunningHour + u.StorageCost
	switch {
	case u.AlwaysOnCost > 0:
		u.SavingsPercent = 100 * (u.AlwaysOnCost - u.Cost) / u.AlwaysOnCost
	case life > 0:
		u.SavingsPercent = 100 * float64(life-u.Running) / float64(life)
	default:
		u.SavingsPercent = 0
	}
	u.ComputeCost = round(u.ComputeCost, 6)
	u.StorageCost = round(u.StorageCost, 6)
	u.Cost = round(u.Cost, 6)
	u.AlwaysOnCost = round(u.AlwaysOnCost, 6)
	u.SavingsPercent = round(u.SavingsPercent, 2)
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// gib is a volume size in GiB (0 when it cannot be read).
func gib(storage string) float64 {
	if storage == "" {
		return 0
	}
	q, err := resource.ParseQuantity(storage)
	if err != nil {
		return 0
	}
	return float64(q.Value()) / (1 << 30)
}

// UsageOf sums the spans' time within [from, to) by category (Finish is left to the caller).
func UsageOf(spans []Span, from, to time.Time) Usage {
	var u Usage
	for _, s := range spans {
		d := Clip(s.Start, s.End, from, to)
		if d <= 0 {
			continue
		}
		switch CategoryOf(s.State) {
		case Running:
			u.Running += d
		case Sleeping:
			u.Sleeping += d
			if s.SleptBy == session.SleepConnectedCap {
				u.SavedByCap += d
			}
		case Stopped:
			u.Stopped += d
		default:
			continue
		}
		u.GiBHours += gib(s.Storage) * d.Hours()
	}
	return u
}

// SessionUsage is one session's line of the report.
type SessionUsage struct {
	SessionID string        `json:"uuid"`
	UserID    string        `json:"user_id"`
	CreatedAt time.Time     `json:"created_at"`
	DeletedAt time.Time     `json:"deleted_at,omitzero"`
	State     session.State `json:"status"` // at the end of the window
	Usage
}

// UserUsage is one user's line of the report.
type UserUsage struct {
	UserID   string `json:"user_id"`
	Sessions int    `json:"sessions"`
	Usage
}

// UsageQuery selects what the report covers: one user or everyone, within [From, To). From is
// required; a zero To (or one in the future) means now; the window is at most MaxUsageWindow.
type UsageQuery struct {
	UserID string    `json:"user_id,omitempty"`
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
}

// UsageReport is usage per session, per user and in total.
type UsageReport struct {
	From        time.Time      `json:"from,omitzero"`
	To          time.Time      `json:"to"`
	UserID      string         `json:"user_id,omitempty"`
	GeneratedAt time.Time      `json:"generated_at"`
	Prices      Prices         `json:"prices"`
	Total       Usage          `json:"total"`
	Users       []UserUsage    `json:"users"`
	Sessions    []SessionUsage `json:"sessions"`
	// PendingEvents is how many events wait in the Redis queue: while it is not 0 the figures
	// may be behind (-1 when the queue could not be read).
	PendingEvents int `json:"pending_events"`
}

// Timeline is one session's input to the report.
type Timeline struct {
	SessionID string
	UserID    string
	CreatedAt time.Time
	DeletedAt time.Time
	Points    []Point
}

// BuildReport computes the report of the timelines within [from, to), counting an open last
// state until to. It is pure: the same timelines give the same report. Sessions without any
// time in the window are left out.
func BuildReport(timelines []Timeline, from, to time.Time, prices Prices) *UsageReport {
	rep := &UsageReport{From: from, To: to, Prices: prices, Users: []UserUsage{}, Sessions: []SessionUsage{}}
	users := map[string]*UserUsage{}
	for _, tl := range timelines {
		spans := Spans(tl.Points, to)
		u := UsageOf(spans, from, to)
		if u.Lifetime() == 0 {
			continue
		}
		u.SleptByCap = sleptByCap(tl.Points, from, to)
		su := SessionUsage{SessionID: tl.SessionID, UserID: tl.UserID, CreatedAt: tl.CreatedAt, DeletedAt: tl.DeletedAt, Usage: u}
		su.State = stateAt(tl.Points, to)
		su.Finish(prices)
		rep.Sessions = append(rep.Sessions, su)
		uu := users[tl.UserID]
		if uu == nil {
			uu = &UserUsage{UserID: tl.UserID}
			users[tl.UserID] = uu
		}
		uu.Sessions++
		uu.Add(u)
		rep.Total.Add(u)
	}
	slices.SortFunc(rep.Sessions, func(a, b SessionUsage) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.SessionID, b.SessionID))
	})
	for _, uu := range users {
		uu.Finish(prices)
		rep.Users = append(rep.Users, *uu)
	}
	slices.SortFunc(rep.Users, func(a, b UserUsage) int { return cmp.Compare(a.UserID, b.UserID) })
	rep.Total.Finish(prices)
	return rep
}

// sleptByCap counts the connected_cap sleeps within [from, to).
func sleptByCap(points []Point, from, to time.Time) int {
	n := 0
	for _, p := range points {
		if p.SleptBy == session.SleepConnectedCap && !p.At.Before(from) && p.At.Before(to) {
			n++
		}
	}
	return n
}

// stateAt is the state of the last point before t.
func stateAt(points []Point, t time.Time) session.State {
	var last *Point
	for i := range points {
		p := &points[i]
		if p.At.Before(t) && (last == nil || p.At.After(last.At) || (p.At.Equal(last.At) && p.Seq > last.Seq)) {
			last = p
		}
	}
	if last == nil {
		return ""
	}
	return last.State
}
