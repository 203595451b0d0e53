package session

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// AppendJSON writes what encoding/json writes, for every field: the full session below sets
// each one (a field added to Session without AppendJSON fails here), the others leave the
// omitempty and omitzero ones out.
func TestAppendJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 20, 35, 6, 123456789, time.UTC)
	full := &Session{ID: "ab12cd34", UserID: "ann@example.com", State: StateRunning, Reason: "pod <crash> & \"loop\"",
		WorkspaceURL: "https://vs-code-ab12cd34.ws.example", Image: "codercom/code-server:4", Storage: "5Gi", CPU: "250m",
		Memory: "256Mi", IdleTimeout: Duration(1500 * time.Microsecond), IdleConnectedMax: Duration(2 * time.Hour), BackupOnDelete: true,
		Labels:    map[string]string{"team": "a\u2028b", "env": "prod\x01", "bad": "\xff\xfe", "": "\t\n\r\b\f\\"},
		CreatedAt: at, UpdatedAt: at.Add(time.Second), LastActivity: at.In(time.FixedZone("x", 5*3600+30*60)),
		ExpiresAt: at.Add(24 * time.Hour), BackupLocation: "gs://b/ab12cd34.tar.zst", RestoreFrom: "gs://b/x.tar.zst",
		RestoredAt: at.Add(time.Minute), Pending: PendingReady, PendingSince: at.Add(2 * time.Minute), Attempt: 3,
		BackupFailures: 1, Password: "pässwörd\u2029"}
	v := reflect.ValueOf(*full)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the full session leaves %s unset: set it, and write it in AppendJSON", v.Type().Field(i).Name)
		}
	}
	for name, s := range map[string]*Session{
		"full":    full,
		"minimal": {ID: "ab12cd34", UserID: "u", State: StateSleeping, CreatedAt: at},
		"zero":    {},
		"nil":     nil,
		"labels":  {ID: "x", Labels: map[string]string{}},
	} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.AppendJSON([]byte("prefix"))
		if err != nil || string(got) != "prefix"+string(want) {
			t.Errorf("%s:\n got %s (%v)\nwant prefix%s", name, got, err, want)
		}
	}
	if _, err := (&Session{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).AppendJSON(nil); err == nil {
		t.Error("a year past 9999: no error (encoding/json refuses it)")
	}
}

// FuzzAppendString holds the string encoding to encoding/json's.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\u2028\u2029", "\xff", "\x00\x1f\x7f", "é\\/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}
