package session

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewIDIsValidAndVaried(t *testing.T) {
	seen := map[string]bool{}
	first := map[byte]bool{}
	for range 2000 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) {
			t.Fatalf("NewID returned invalid id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q in 2000 draws", id)
		}
		seen[id] = true
		first[id[0]] = true
	}
	if len(first) < 20 {
		t.Fatalf("first characters not spread: %d distinct", len(first))
	}
}

func TestValidID(t *testing.T) {
	good := []string{"abcdefgh", "a1234567", "zzzzzzzz"}
	bad := []string{"", "abc", "abcdefghi", "1bcdefgh", "ABCDEFGH", "abcdefg-", "../xxxxx", "abcdefg\x00", "abcdéfgh", "abcd efg"}
	for _, id := range good {
		if !ValidID(id) || CheckID(id) != nil {
			t.Errorf("ValidID(%q) = false, want true", id)
		}
	}
	for _, id := range bad {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true, want false", id)
		}
		err := CheckID(id)
		if !errors.Is(err, ErrInvalid) || FieldOf(err) != "uuid" {
			t.Errorf("CheckID(%q) = %v, want invalid uuid", id, err)
		}
	}
}

func TestCheckUserID(t *testing.T) {
	for _, u := range []string{"user@example.com", "x", strings.Repeat("a", 254), "名前@例え.jp"} {
		if err := CheckUserID(u); err != nil {
			t.Errorf("CheckUserID(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"", "   ", strings.Repeat("a", 255), "a\nb", "a\x00b", "tab\there", "\xff\xfe", "del\x7f"} {
		err := CheckUserID(u)
		if !errors.Is(err, ErrInvalid) || FieldOf(err) != "user_id" {
			t.Errorf("CheckUserID(%q) = %v, want invalid user_id", u, err)
		}
	}
}

func TestCheckLabels(t *testing.T) {
	if err := CheckLabels(map[string]string{"team": "data", "example.com/cost-center": "42"}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []map[string]string{
		{"hyperbola.dev/session": "x"},
		{"app.kubernetes.io/name": "x"},
		{"bad key": "x"},
		{"ok": "bad value!"},
		{"ok": strings.Repeat("v", 64)},
	} {
		if err := CheckLabels(l); FieldOf(err) != "labels" {
			t.Errorf("CheckLabels(%v) = %v, want invalid labels", l, err)
		}
	}
}

func TestParseQuantityAndImage(t *testing.T) {
	if _, err := ParseQuantity("storage", "5Gi"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"5 gigs", "", "-1Gi", "0"} {
		if _, err := ParseQuantity("storage", q); FieldOf(err) != "storage" {
			t.Errorf("ParseQuantity(%q) = %v", q, err)
		}
	}
	if err := CheckImage("image", "codercom/code-server:4.96.4"); err != nil {
		t.Fatal(err)
	}
	for _, im := range []string{"", "a b", strings.Repeat("x", 513)} {
		if err := CheckImage("image", im); FieldOf(err) != "image" {
			t.Errorf("CheckImage(%q) = %v", im, err)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var v struct{ D Duration }
	if err := json.Unmarshal([]byte(`{"D":"15m"}`), &v); err != nil || v.D.D() != 15*time.Minute {
		t.Fatalf("string: %v %v", v.D, err)
	}
	if err := json.Unmarshal([]byte(`{"D":90}`), &v); err != nil || v.D.D() != 90*time.Second {
		t.Fatalf("seconds: %v %v", v.D, err)
	}
	for _, bad := range []string{`{"D":"soon"}`, `{"D":"-5m"}`, `{"D":-3}`, `{"D":true}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	// Written as the Go duration string, read back the same, escaped or not.
	for _, d := range []time.Duration{0, 1500 * time.Microsecond, 90 * time.Second, 26*time.Hour + time.Nanosecond} {
		b, err := json.Marshal(struct{ D Duration }{Duration(d)})
		if want := `{"D":"` + d.String() + `"}`; err != nil || string(b) != want {
			t.Fatalf("marshal %v: %s, %v; want %s", d, b, err, want)
		}
		if err := json.Unmarshal(b, &v); err != nil || v.D.D() != d {
			t.Fatalf("read back %s: %v %v", b, v.D, err)
		}
	}
	if err := json.Unmarshal([]byte(`{"D":"1\u006d"}`), &v); err != nil || v.D.D() != time.Minute {
		t.Fatalf("escaped string: %v %v", v.D, err)
	}
}

func TestErrorKinds(t *testing.T) {
	err := NotFound("abcdefgh")
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || KindOf(err) != KindNotFound {
		t.Fatal("NotFound kind")
	}
	wrapped := Unavailable("redis", errors.New("dial tcp: refused"))
	if KindOf(wrapped) != KindUnavailable || !strings.Contains(wrapped.Error(), "refused") {
		t.Fatal(wrapped)
	}
	if KindOf(errors.New("x")) != KindInternal || KindOf(nil) != "" {
		t.Fatal("KindOf")
	}
}

func TestCheckTTL(t *testing.T) {
	for _, c := range []struct {
		d  time.Duration
		ok bool
	}{{0, true}, {time.Hour, true}, {720 * time.Hour, true}, {59 * time.Minute, false}, {time.Second, false}, {-time.Hour, false}} {
		err := CheckTTL(Duration(c.d))
		if (err == nil) != c.ok || (err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "ttl"))) {
			t.Errorf("CheckTTL(%v) = %v, want ok %v", c.d, err, c.ok)
		}
	}
	created := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	if !ExpiresAt(created, 0).IsZero() || !ExpiresAt(created, Duration(2*time.Hour)).Equal(created.Add(2*time.Hour)) {
		t.Error("ExpiresAt: 0 must never expire, 2h must be created + 2h")
	}
}
