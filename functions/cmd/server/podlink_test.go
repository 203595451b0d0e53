package main

import "testing"

func TestLinkTarget(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		":8080":          "127.0.0.1:8080",
		"[::]:8080":      "127.0.0.1:8080",
		"[::1]:8080":     "[::1]:8080",
	} {
		if got, err := linkTarget(listen); err != nil || got != want {
			t.Errorf("linkTarget(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	if _, err := linkTarget("8080"); err == nil {
		t.Error("linkTarget(8080): no error")
	}
}

func TestPointsAt(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:8099":          true,
		"http://127.0.0.1:8099/":         true,
		"https://127.0.0.1:8099":         false,
		"http://127.0.0.1:8080":          false,
		"":                               false,
		"http://hyperbola.example.com/x": false,
	} {
		if got := pointsAt(u, "127.0.0.1:8099"); got != want {
			t.Errorf("pointsAt(%q) = %v, want %v", u, got, want)
		}
	}
}
