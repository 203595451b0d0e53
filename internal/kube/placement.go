package kube

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// ParseNodeSelector reads "key=value,key=value" (HYPERBOLA_NODE_SELECTOR): the labels a node
// must carry to run workspace and backup pods. "" selects every node.
func ParseNodeSelector(s string) (map[string]string, error) {
	out, err := ParseLabels(s)
	if err != nil {
		return nil, fmt.Errorf("node selector: %w", err)
	}
	return out, nil
}

// ParseLabels reads labels written "key=value,key=value"; "" is none (nil).
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range items(s) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want key=value", part)
		}
		if err := validateLabel(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return nil, err
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ParseTolerations reads "key=value:Effect,key:Effect" (HYPERBOLA_TOLERATIONS), the taints of
// kubectl taint's syntax that workspace and backup pods tolerate: "key=value:Effect" tolerates
// that taint (operator Equal), "key:Effect" any value of key (operator Exists). The effect is
// NoSchedule, PreferNoSchedule or NoExecute.
func ParseTolerations(s string) ([]corev1.Toleration, error) {
	var out []corev1.Toleration
	for part := range items(s) {
		kv, effect, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("toleration %q: want key=value:Effect or key:Effect", part)
		}
		t := corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffect(effect)}
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("toleration %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", part, effect)
		}
		t.Key = kv
		if k, v, hasValue := strings.Cut(kv, "="); hasValue {
			t.Key, t.Value, t.Operator = k, v, corev1.TolerationOpEqual
		}
		if err := validateLabel(t.Key, t.Value); err != nil {
			return nil, fmt.Errorf("toleration %q: %w", part, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// items yields the non-empty, trimmed items of a comma-separated list.
func items(s string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for part := range strings.SplitSeq(s, ",") {
			if part = strings.TrimSpace(part); part != "" && !yield(part) {
				return
			}
		}
	}
}

// place puts a workspace's or a backup's pod where Options.NodeSelector and
// Options.Tolerations say.
func (o Options) place(pod *corev1ac.PodSpecApplyConfiguration) *corev1ac.PodSpecApplyConfiguration {
	if len(o.NodeSelector) > 0 {
		pod.WithNodeSelector(maps.Clone(o.NodeSelector))
	}
	for _, t := range o.Tolerations {
		ac := corev1ac.Toleration().WithKey(t.Key).WithOperator(t.Operator).WithEffect(t.Effect)
		if t.Value != "" {
			ac.WithValue(t.Value)
		}
		pod.WithTolerations(ac)
	}
	return pod
}

// validatePlacement checks hand-built options (ParseNodeSelector and ParseTolerations check
// what comes from the environment).
func (o Options) validatePlacement() error {
	for _, k := range slices.Sorted(maps.Keys(o.NodeSelector)) {
		if err := validateLabel(k, o.NodeSelector[k]); err != nil {
			return fmt.Errorf("kube options: node selector: %w", err)
		}
	}
	for _, t := range o.Tolerations {
		if err := validateLabel(t.Key, t.Value); err != nil {
			return fmt.Errorf("kube options: toleration: %w", err)
		}
	}
	return nil
}
