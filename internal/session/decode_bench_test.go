package session

import (
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkDecodeJSON compares DecodeJSON with json.Unmarshal on a typical stored record.
//
//	go test ./internal/session -run '^$' -bench DecodeJSON -benchmem
func BenchmarkDecodeJSON(b *testing.B) {
	at := time.Date(2026, 12, 3, 5, 14, 2, 123456789, time.UTC)
	raw, err := json.Marshal(&Session{ID: "abcd1234", UserID: "student-042", State: StateRunning,
		WorkspaceURL: "https://vs-code-abcd1234.example.test", Image: "codercom/code-server:4.100.3",
		Storage: "10Gi", CPU: "1", Memory: "2Gi", IdleTimeout: Duration(15 * time.Minute), BackupOnDelete: true,
		Labels: map[string]string{"course": "cs101"}, CreatedAt: at, UpdatedAt: at, LastActivity: at,
		ExpiresAt: at.Add(24 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeJSON(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s Session
			if err := json.Unmarshal(raw, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
