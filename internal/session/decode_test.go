package session

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// decodeCases are stored records of every shape: what the store writes, and what only
// another writer (an older version, a hand edit) could have left.
func decodeCases(t testing.TB) [][]byte {
	t.Helper()
	at := time.Date(2026, 12, 3, 5, 14, 2, 123456789, time.UTC)
	full := &Session{ID: "abcd1234", UserID: "u-1", State: StateRunning, Reason: "a \"quoted\" reason\n",
		WorkspaceURL: "https://vs-code-abcd1234.example.test", Image: "img:1", Storage: "10Gi", CPU: "1",
		Memory: "2Gi", IdleTimeout: Duration(15 * time.Minute), IdleConnectedMax: Duration(2 * time.Hour), BackupOnDelete: true,
		Labels:    map[string]string{"team": "a", "ünï": "cödé", "empty": ""},
		CreatedAt: at, UpdatedAt: at.Add(time.Second), LastActivity: at.Add(time.Minute),
		ExpiresAt: at.Add(24 * time.Hour), BackupLocation: "gs://b/x.zip", RestoreFrom: "gs://b/y.zip",
		RestoredAt: at.Add(2 * time.Minute), Pending: PendingReady, PendingSince: at, Attempt: 3, BackupFailures: 2,
		Password: "pw"}
	stored, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	minimal, err := json.Marshal(&Session{ID: "abcd1234", State: StateSleeping})
	if err != nil {
		t.Fatal(err)
	}
	out := [][]byte{stored, minimal}
	for _, s := range []string{
		`{}`,
		`{"uuid":"x","future_field":{"a":[1,2,{"b":null}]},"status":"running"}`,
		`{"uuid":null,"status":"running"}`,
		`{"UUID":"upper","status":"running"}`,
		`{"uuid":"a","uuid":"b"}`,
		`{"uuid":"\xff\xfe"}`,
		`{"uuid":"\u00e9\ud83d\ude00"}`,
		`{"idle_timeout":900}`,
		`{"idle_timeout":"15m"}`,
		`{"idle_timeout":null}`,
		`{"idle_timeout":"forever"}`,
		`{"attempt":1.5}`,
		`{"attempt":-0}`,
		`{"attempt":1e2}`,
		`{"attempt":"3"}`,
		`{"backup_on_delete":"true"}`,
		`{"created_at":"not a time"}`,
		`{"created_at":null}`,
		`{"created_at":"2026-12-03T05:14:02+01:00"}`,
		`{"labels":null}`,
		`{"labels":{"a":1}}`,
		`{"labels":{}}`,
		`{"status":"running"} trailing`,
		`{"status":"running"`,
		`[]`,
		`null`,
		` {"uuid" : "spaced" } `,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// TestDecodeJSON: DecodeJSON gives what json.Unmarshal into a new Session gives (the same
// fields, or an error for the same records), for every shape of record.
func TestDecodeJSON(t *testing.T) {
	for _, raw := range decodeCases(t) {
		sameAsStdlib(t, raw)
	}
}

// FuzzDecodeJSON holds DecodeJSON to json.Unmarshal on any input.
func FuzzDecodeJSON(f *testing.F) {
	for _, raw := range decodeCases(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) { sameAsStdlib(t, raw) })
}

func sameAsStdlib(t *testing.T, raw []byte) {
	t.Helper()
	var want Session
	wantErr := json.Unmarshal(raw, &want)
	got, err := DecodeJSON(raw)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", raw, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(*got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", raw, *got, want)
	}
}
