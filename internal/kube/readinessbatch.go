package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/clock"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Readiness is asked on every status poll of a session waiting for its pod, so a hundred
// pollers would make two hundred requests a poll and starve the writes of the client-side
// budget. Instead the callers of one Cluster meet in rounds: a caller joins the round that has
// not started yet, and the round, run by one of its own callers (no goroutine of its own, no
// cache, no watch: the serverless rule), answers all of them from one list of Deployments and
// one of pods by a set-based selector. Rounds start at most once per Options.ReadinessInterval
// and never overlap, and a caller is answered only by a round that started after it joined, so
// an answer is never older than the call.

// readinessChunk bounds the ids in one selector: a hundred ids keep the request's URL near a
// kilobyte, well under what API servers and proxies accept.
const readinessChunk = 100

// readinessRounds coalesces the Readiness calls of one Cluster into rounds.
type readinessRounds struct {
	interval time.Duration
	clock    clock.Clock
	read     func(ctx context.Context, ids []string) (map[string]*session.Observed, error)

	mu      sync.Mutex
	pending *round        // the round new callers join; not started
	running *round        // the round whose lists are under way
	last    time.Time     // when the latest round started
	changed chan struct{} // closed, and replaced, when a round ends or is handed back
}

// round is one read for the ids of the callers that joined it.
type round struct {
	ids     map[string]int // each id asked for, and how many callers still wait for it
	done    chan struct{}  // closed once answers or err is set
	answers map[string]*session.Observed
	err     error
	into    *round // the round this one was folded into, when its runner gave up before the end
}

func newReadinessRounds(interval time.Duration, clk clock.Clock,
	read func(context.Context, []string) (map[string]*session.Observed, error)) *readinessRounds {
	return &readinessRounds{interval: interval, clock: clk, read: read, changed: make(chan struct{})}
}

// ask joins the pending round for id and returns its answer: the caller's own goroutine runs
// the round when its time has come and nobody else has, and otherwise waits for it. A caller
// whose ctx ends leaves with ctx's error; the others are not affected (a round whose runner
// leaves is run again by one of them).
func (b *readinessRounds) ask(ctx context.Context, id string) (*session.Observed, error) {
	b.mu.Lock()
	r := b.join(id)
	for {
		r = r.current()
		select {
		case <-r.done:
			b.mu.Unlock()
			return r.answer(id)
		default:
		}
		var timer clock.Timer // the pending round's start, when nothing else runs
		var start <-chan time.Time
		if r == b.pending && b.running == nil {
			wait := b.last.Add(b.interval).Sub(b.clock.Now())
			if wait <= 0 {
				return b.run(ctx, r, id)
			}
			timer = b.clock.NewTimer(wait)
			start = timer.C()
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		case <-start:
		}
		if timer != nil {
			timer.Stop()
		}
		b.mu.Lock()
		if ctx.Err() != nil {
			b.leave(r.current(), id)
			b.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

// join adds id to the pending round (a new one when there is none) and returns that round.
func (b *readinessRounds) join(id string) *round {
	if b.pending == nil {
		b.pending = &round{ids: map[string]int{}, done: make(chan struct{})}
	}
	b.pending.ids[id]++
	return b.pending
}

// run starts r, which is pending, with b.mu held, and releases it while the cluster is read.
func (b *readinessRounds) run(ctx context.Context, r *round, id string) (*session.Observed, error) {
	b.pending, b.running, b.last = nil, r, b.clock.Now()
	ids := slices.Sorted(maps.Keys(r.ids))
	b.mu.Unlock()
	answers, err := b.read(ctx, ids)
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.broadcast()
	b.running = nil
	if err != nil && ctx.Err() != nil {
		// This caller gave up, not the cluster: its error is no answer for the others, who
		// run the round again (no sooner than the interval after this start).
		b.leave(r, id)
		b.handBack(r)
		return nil, ctx.Err()
	}
	r.answers, r.err = answers, err
	close(r.done)
	return r.answer(id)
}

// leave takes one caller of id out of r, unless r has already answered.
func (b *readinessRounds) leave(r *round, id string) {
	select {
	case <-r.done:
		return
	default:
	}
	if r.ids[id]--; r.ids[id] <= 0 {
		delete(r.ids, id)
	}
	if r == b.pending && len(r.ids) == 0 {
		b.pending = nil
	}
}

// handBack returns a round that did not finish to the pending ones: it becomes the pending
// round, or is folded into the one callers joined meanwhile (both are yet to start).
func (b *readinessRounds) handBack(r *round) {
	switch {
	case len(r.ids) == 0: // nobody waits for it any more
	case b.pending == nil:
		b.pending = r
	default:
		for id, n := range r.ids {
			b.pending.ids[id] += n
		}
		r.into = b.pending
	}
}

func (b *readinessRounds) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// current follows r's folds to the round that will answer its callers.
func (r *round) current() *round {
	for r.into != nil {
		r = r.into
	}
	return r
}

// answer is id's answer from a finished round: each caller gets a copy of its own.
func (r *round) answer(id string) (*session.Observed, error) {
	if r.err != nil {
		return nil, r.err
	}
	obs, ok := r.answers[id]
	if !ok {
		return &session.Observed{ID: id}, nil
	}
	out := *obs
	out.Kinds = slices.Clone(obs.Kinds)
	return &out, nil
}

// readinessRound reads the readiness of every session of ids (valid ids) as Readiness does one
// by one: one list of their workspace Deployments, then one of the pods of those that have one
// (per readinessChunk ids), in that order so the pods are at least as new as their Deployment.
// The errors name no session: they are every caller's, and each may only learn its own.
func (c *Cluster) readinessRound(ctx context.Context, ids []string) (map[string]*session.Observed, error) {
	ns := c.opts.Namespace
	// The two lists at once: a round's answer waits for one list, not two in a row. Pods are
	// listed for every id asked; those whose Deployment is not listed are left out below.
	var listed []appsv1.Deployment
	var pods []corev1.Pod
	err := parallel(ctx,
		func(ctx context.Context) error {
			return roundLists(ctx, c, "Deployments", ids, func(ctx context.Context, sel string, into *[]appsv1.Deployment) error {
				return listPages(ctx, c, sel, c.rd.AppsV1().Deployments(ns).List, deploymentItems, into)
			}, &listed)
		},
		func(ctx context.Context) error {
			return roundLists(ctx, c, "Pods", ids, func(ctx context.Context, sel string, into *[]corev1.Pod) error {
				return listPages(ctx, c, sel, c.rd.CoreV1().Pods(ns).List, podItems, into)
			}, &pods)
		})
	if err != nil {
		return nil, err
	}
	deps := map[string]*appsv1.Deployment{}
	for i := range listed {
		d := &listed[i]
		id := d.Labels[LabelSession]
		if n, err := NamesFor(id); err == nil && n.Workspace == d.Name {
			deps[id] = d
		}
	}
	podsOf := map[string][]corev1.Pod{}
	for _, p := range pods {
		podsOf[p.Labels[LabelSession]] = append(podsOf[p.Labels[LabelSession]], p)
	}
	out := make(map[string]*session.Observed, len(ids))
	for _, id := range ids {
		obs := &session.Observed{ID: id}
		if dep := deps[id]; dep != nil {
			obs.Kinds = []session.ObjectKind{session.ObjectDeployment}
			observeReadiness(obs, dep, podsOf[id])
		}
		out[id] = obs
	}
	return out, nil
}

// roundLists lists what (a kind, plural) of the workspaces of ids into *into, readinessChunk
// ids a selector, the chunks at once.
func roundLists[T any](ctx context.Context, c *Cluster, what string, ids []string,
	list func(context.Context, string, *[]T) error, into *[]T) error {
	chunks := slices.Collect(slices.Chunk(ids, readinessChunk))
	got := make([][]T, len(chunks))
	steps := make([]func(context.Context) error, len(chunks))
	for i, chunk := range chunks {
		sel, err := readinessSelector(chunk)
		if err != nil {
			return err
		}
		steps[i] = func(ctx context.Context) error {
			return c.kubeError("list "+what+" for a readiness round", "", "", list(ctx, sel, &got[i]))
		}
	}
	if err := parallel(ctx, steps...); err != nil {
		return err
	}
	*into = slices.Concat(got...)
	return nil
}

// readinessSelector selects the workspace objects of the sessions ids (valid ids).
func readinessSelector(ids []string) (string, error) {
	req, err := labels.NewRequirement(LabelSession, selection.In, ids)
	if err != nil {
		return "", fmt.Errorf("kube: readiness selector: %w", err)
	}
	return labels.SelectorFromSet(labels.Set{
		LabelManagedBy: ManagedByValue, LabelName: NameValue, LabelComponent: ComponentWorkspace,
	}).Add(*req).String(), nil
}

func deploymentItems(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items }
