package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/podlink"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
)

// Local runs only: the local cluster's workspace pods reach this process (the IDE extension
// posts activity to HYPERBOLA_ACTIVITY_URL) through internal/podlink, since this process
// listens on this host's loopback only and pods may not send traffic out of their range. A
// deployment's pods reach the public URL instead.
const (
	// localPodLinkEnv is the address every workspace pod gets on its own loopback, relayed to
	// this process's API (HYPERBOLA_LISTEN), e.g. 127.0.0.1:8099; then
	// HYPERBOLA_ACTIVITY_URL=http://127.0.0.1:8099.
	localPodLinkEnv = "HYPERBOLA_LOCAL_POD_LINK"
	// localPodLinkNetnsEnv is the directory of the node's pod network namespaces (the local
	// cluster's REALNODE_NETNS_DIR); unset = found through /proc.
	localPodLinkNetnsEnv = "HYPERBOLA_LOCAL_POD_LINK_NETNS"
	// activityURLEnv is read here only to warn when it does not point at the link.
	activityURLEnv = "HYPERBOLA_ACTIVITY_URL"
)

// startPodLink starts the link from the workspaces of cfg.Namespace to this process's API and
// returns a channel closed once it has stopped (when ctx ends).
func startPodLink(ctx context.Context, cfg *config.Config, addr string, log *slog.Logger) (<-chan struct{}, error) {
	target, err := linkTarget(cfg.ListenAddr)
	if err != nil {
		return nil, err
	}
	rc, err := stack.RESTConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	selector := labels.SelectorFromSet(labels.Set{kube.LabelManagedBy: kube.ManagedByValue, kube.LabelComponent: kube.ComponentWorkspace})
	link, err := podlink.New(client, podlink.Options{
		Namespace: cfg.Namespace, Selector: selector.String(), Listen: addr, Target: target,
		NetnsDir: os.Getenv(localPodLinkNetnsEnv), Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", localPodLinkEnv, addr, err)
	}
	if u := os.Getenv(activityURLEnv); !pointsAt(u, addr) {
		log.Warn("workspaces will not reach this process: "+activityURLEnv+" is not the link's address",
			activityURLEnv, u, localPodLinkEnv, addr)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = link.Run(ctx)
	}()
	return done, nil
}

// linkTarget is the loopback address of this process's API: HYPERBOLA_LISTEN, with an
// unspecified host (0.0.0.0, "") made 127.0.0.1.
func linkTarget(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("HYPERBOLA_LISTEN=%q: want host:port: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// pointsAt reports whether rawURL is http://addr (any path).
func pointsAt(rawURL, addr string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Scheme == "http" && u.Host == addr
}
