package session

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the session's JSON, byte for byte what encoding/json writes for it, to
// b. The API answers every status and listing with it: encoding/json reflects over the struct
// and re-validates what each time.Time's MarshalJSON returns, which made encoding most of a
// listing's CPU. TestAppendJSON holds it to encoding/json's output for every field; on an
// error (a time encoding/json refuses too) the caller falls back to encoding/json.
func (s *Session) AppendJSON(b []byte) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, `{"uuid":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"user_id":`...)
	b = appendString(b, s.UserID)
	b = append(b, `,"status":`...)
	b = appendString(b, string(s.State))
	if s.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, s.Reason)
	}
	b = append(b, `,"workspace_url":`...)
	b = appendString(b, s.WorkspaceURL)
	b = append(b, `,"image":`...)
	b = appendString(b, s.Image)
	b = append(b, `,"storage":`...)
	b = appendString(b, s.Storage)
	b = append(b, `,"cpu":`...)
	b = appendString(b, s.CPU)
	b = append(b, `,"memory":`...)
	b = appendString(b, s.Memory)
	b = append(b, `,"idle_timeout":`...)
	b = appendString(b, s.IdleTimeout.String())
	if s.IdleConnectedMax != 0 {
		b = append(b, `,"idle_connected_max":`...)
		b = appendString(b, s.IdleConnectedMax.String())
	}
	b = append(b, `,"backup_on_delete":`...)
	b = strconv.AppendBool(b, s.BackupOnDelete)
	if len(s.Labels) > 0 {
		b = append(b, `,"labels":{`...)
		for i, k := range slices.Sorted(maps.Keys(s.Labels)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, s.Labels[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"created_at":`...)
	if b, err = appendTime(b, s.CreatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = appendTime(b, s.UpdatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"last_activity":`...)
	if b, err = appendTime(b, s.LastActivity); err != nil {
		return nil, err
	}
	if !s.ExpiresAt.IsZero() {
		b = append(b, `,"expires_at":`...)
		if b, err = appendTime(b, s.ExpiresAt); err != nil {
			return nil, err
		}
	}
	if s.BackupLocation != "" {
		b = append(b, `,"backup_location":`...)
		b = appendString(b, s.BackupLocation)
	}
	if s.RestoreFrom != "" {
		b = append(b, `,"restore_from":`...)
		b = appendString(b, s.RestoreFrom)
	}
	if !s.RestoredAt.IsZero() {
		b = append(b, `,"restored_at":`...)
		if b, err = appendTime(b, s.RestoredAt); err != nil {
			return nil, err
		}
	}
	if s.Pending != "" {
		b = append(b, `,"pending":`...)
		b = appendString(b, string(s.Pending))
	}
	if !s.PendingSince.IsZero() {
		b = append(b, `,"pending_since":`...)
		if b, err = appendTime(b, s.PendingSince); err != nil {
			return nil, err
		}
	}
	if s.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(s.Attempt), 10)
	}
	if s.BackupFailures != 0 {
		b = append(b, `,"backup_failures":`...)
		b = strconv.AppendInt(b, int64(s.BackupFailures), 10)
	}
	if s.Password != "" {
		b = append(b, `,"password":`...)
		b = appendString(b, s.Password)
	}
	return append(b, '}'), nil
}

// appendTime is time.Time's MarshalJSON, appended.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, fmt.Errorf("time %v: %w", t, err)
	}
	return append(b, '"'), nil
}

// appendString is encoding/json's string encoding (with HTML escaping, as json.Marshal does):
// quotes, backslashes, control characters, <, > and & escaped, U+2028 and U+2029 escaped,
// invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
