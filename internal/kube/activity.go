package kube

import (
	"fmt"
	"net/url"
	"strconv"

	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
)

// activityData is what a new session's Secret holds for the IDE extension: its activity
// credential under activity.SecretKey, when the deployment has an activity key.
func activityData(w workspace, o Options) map[string][]byte {
	if len(o.ActivityKey) == 0 {
		return nil
	}
	return map[string][]byte{activity.SecretKey: []byte(activity.Token(o.ActivityKey, w.ID))}
}

// activityEnv is the IDE extension's environment in the workspace container, when the
// deployment gives workspaces an activity URL (none otherwise, so a Deployment is built as
// before the extension existed). The credential comes from the session's Secret, optional:
// a Secret created before the deployment had an activity key has none, and the extension
// stays silent there (the heartbeat rule with its cap applies).
func activityEnv(w workspace, o Options) []*corev1ac.EnvVarApplyConfiguration {
	if o.ActivityURL == "" {
		return nil
	}
	value := func(name, v string) *corev1ac.EnvVarApplyConfiguration {
		return corev1ac.EnvVar().WithName(name).WithValue(v)
	}
	env := []*corev1ac.EnvVarApplyConfiguration{
		value(activity.EnvSession, w.ID),
		value(activity.EnvURL, o.ActivityURL),
		corev1ac.EnvVar().WithName(activity.EnvToken).
			WithValueFrom(corev1ac.EnvVarSource().
				WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(w.names.Auth).WithKey(activity.SecretKey).WithOptional(true))),
		value(activity.EnvCPUThreshold, strconv.FormatFloat(o.ActivityCPUThreshold, 'f', -1, 64)),
		value(activity.EnvSyncSeconds, strconv.Itoa(o.ActivitySyncSeconds)),
	}
	if o.ActivityReportSeconds > 0 {
		env = append(env, value(activity.EnvReportSeconds, strconv.Itoa(o.ActivityReportSeconds)))
	}
	return env
}

// validateActivity checks the extension's settings when workspaces get them.
func (o Options) validateActivity() error {
	if o.ActivityURL == "" {
		return nil
	}
	u, err := url.Parse(o.ActivityURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("kube options: activity URL %q is not an absolute http(s) URL", o.ActivityURL)
	case o.ActivityCPUThreshold <= 0:
		return fmt.Errorf("kube options: activity CPU threshold %v is not a positive number of cores", o.ActivityCPUThreshold)
	case o.ActivitySyncSeconds <= 0:
		return fmt.Errorf("kube options: activity sync seconds %d is not positive", o.ActivitySyncSeconds)
	}
	return nil
}
