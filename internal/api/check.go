package api

import (
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The rules on input are the session core's (and the usage report's), which run them on every
// call. The API runs the same exported checks first, in the core's order (so both name the
// same field), for one reason: a request the core would refuse never reaches the Manager, so
// it takes no session lock and no Redis round trip.

// checkCreate checks a create as session.Service.Create does.
func checkCreate(req session.CreateRequest) error {
	if err := session.CheckUserID(req.UserID); err != nil {
		return err
	}
	if err := session.CheckState("state", req.State); err != nil {
		return err
	}
	if req.TTL != nil {
		if err := session.CheckTTL(*req.TTL); err != nil {
			return err
		}
	}
	return checkSpec(given(req.Image), given(req.Storage), given(req.CPU), given(req.Memory), req.IdleTimeout, req.Labels)
}

// given is a create's member as checkSpec takes it: "" is not given (the server's default).
func given(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// checkUpdate checks an update as session.Service.Update does before it looks at the session
// (shrinking the volume needs the session, so only the core refuses it).
func checkUpdate(req session.UpdateRequest) error {
	if req.TTL != nil {
		if err := session.CheckTTL(*req.TTL); err != nil {
			return err
		}
	}
	return checkSpec(req.Image, req.Storage, req.CPU, req.Memory, req.IdleTimeout, req.Labels)
}

// checkSpec checks the workspace's members that are given (not nil).
func checkSpec(image, storage, cpu, memory *string, idle *session.Duration, labels map[string]string) error {
	if image != nil {
		if err := session.CheckImage("image", *image); err != nil {
			return err
		}
	}
	for _, q := range []struct {
		field string
		v     *string
	}{{"storage", storage}, {"cpu", cpu}, {"memory", memory}} {
		if q.v != nil {
			if _, err := session.ParseQuantity(q.field, *q.v); err != nil {
				return err
			}
		}
	}
	if idle != nil {
		if err := session.CheckIdleTimeout(*idle); err != nil {
			return err
		}
	}
	return session.CheckLabels(labels)
}

// checkStatus checks a state filter.
func checkStatus(st session.State) error {
	if st.Valid() {
		return nil
	}
	names := make([]string, len(session.States))
	for i, x := range session.States {
		names[i] = string(x)
	}
	return session.Invalid("status", "status must be one of %s", strings.Join(names, ", "))
}

// checkUsage checks a usage query as events.Recorder.Usage does; a user_id that is given is
// checked even when empty.
func checkUsage(q events.UsageQuery, userGiven bool) error {
	if userGiven {
		if err := session.CheckUserID(q.UserID); err != nil {
			return err
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return session.Invalid("from", "from (%s) must be before to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	return nil
}
