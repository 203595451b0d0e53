package session

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// DecodeJSON reads a stored session record, with the same outcome as json.Unmarshal into a
// new Session. Lists decode every record they answer with, and encoding/json's reflection and
// its separate validating scan were half of a listing's CPU. The fast path reads records of
// the exact shape json.Marshal writes for a Session (no whitespace, known names each at most
// once, strings without escapes); anything else (another writer's record, a name of another
// case, a null, an escape, malformed JSON) goes to json.Unmarshal whole, so the fast path
// never decides anything encoding/json would decide differently. TestDecodeJSON and
// FuzzDecodeJSON hold the two to the same result.
func DecodeJSON(raw []byte) (*Session, error) {
	s := &Session{}
	if (&recordScanner{b: raw}).session(s) {
		return s, nil
	}
	*s = Session{}
	if err := json.Unmarshal(raw, s); err != nil {
		return nil, err
	}
	return s, nil
}

// recordScanner is the fast path's reader; every method answers false for "not the shape it
// reads", and the record then goes to encoding/json.
type recordScanner struct {
	b []byte
	i int
}

func (r *recordScanner) byte(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, of valid UTF-8 (exactly the
// bytes encoding/json would give).
func (r *recordScanner) str() ([]byte, bool) {
	if !r.byte('"') {
		return nil, false
	}
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			return s, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		}
		r.i++
	}
	return nil, false
}

// quoted reads a string as str does and returns it with its quotes (a time's JSON).
func (r *recordScanner) quoted() ([]byte, bool) {
	start := r.i
	_, ok := r.str()
	return r.b[start:r.i], ok
}

// integer reads a JSON integer (no fraction, exponent or leading zero).
func (r *recordScanner) integer() (int, bool) {
	start := r.i
	r.byte('-')
	digits := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	if r.i == digits || (r.b[digits] == '0' && r.i-digits > 1) {
		return 0, false
	}
	if r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		return 0, false
	}
	n, err := strconv.Atoi(string(r.b[start:r.i]))
	return n, err == nil
}

func (r *recordScanner) literal(lit string) bool {
	if len(r.b)-r.i >= len(lit) && string(r.b[r.i:r.i+len(lit)]) == lit {
		r.i += len(lit)
		return true
	}
	return false
}

// session reads the whole record into s.
func (r *recordScanner) session(s *Session) bool {
	if !r.byte('{') {
		return false
	}
	var seen uint32
	if r.byte('}') {
		return r.i == len(r.b)
	}
	for {
		name, ok := r.str()
		if !ok || !r.byte(':') {
			return false
		}
		bit, ok := r.field(s, string(name))
		if !ok || seen&bit != 0 {
			return false // a duplicate: encoding/json merges some kinds, so it decides
		}
		seen |= bit
		if r.byte('}') {
			return r.i == len(r.b)
		}
		if !r.byte(',') {
			return false
		}
	}
}

// duration reads a Duration: a quoted Go duration or a number of seconds.
func (r *recordScanner) duration(d *Duration) bool {
	start := r.i
	var ok bool
	if r.i < len(r.b) && r.b[r.i] == '"' {
		_, ok = r.quoted()
	} else {
		_, ok = r.integer()
	}
	return ok && d.UnmarshalJSON(r.b[start:r.i]) == nil
}

// field reads the value of name into s and returns the field's bit.
func (r *recordScanner) field(s *Session, name string) (uint32, bool) {
	var str *string
	var tm *time.Time
	var num *int
	var bit uint32
	switch name {
	case "uuid":
		str, bit = &s.ID, 1<<0
	case "user_id":
		str, bit = &s.UserID, 1<<1
	case "status":
		v, ok := r.str()
		s.State = State(v)
		return 1 << 2, ok
	case "reason":
		str, bit = &s.Reason, 1<<3
	case "workspace_url":
		str, bit = &s.WorkspaceURL, 1<<4
	case "image":
		str, bit = &s.Image, 1<<5
	case "storage":
		str, bit = &s.Storage, 1<<6
	case "cpu":
		str, bit = &s.CPU, 1<<7
	case "memory":
		str, bit = &s.Memory, 1<<8
	case "idle_timeout":
		return 1 << 9, r.duration(&s.IdleTimeout)
	case "idle_connected_max":
		return 1 << 24, r.duration(&s.IdleConnectedMax)
	case "backup_on_delete":
		switch {
		case r.literal("true"):
			s.BackupOnDelete = true
		case r.literal("false"):
			s.BackupOnDelete = false
		default:
			return 0, false
		}
		return 1 << 10, true
	case "labels":
		return 1 << 11, r.labels(s)
	case "created_at":
		tm, bit = &s.CreatedAt, 1<<12
	case "updated_at":
		tm, bit = &s.UpdatedAt, 1<<13
	case "last_activity":
		tm, bit = &s.LastActivity, 1<<14
	case "expires_at":
		tm, bit = &s.ExpiresAt, 1<<15
	case "backup_location":
		str, bit = &s.BackupLocation, 1<<16
	case "restore_from":
		str, bit = &s.RestoreFrom, 1<<17
	case "restored_at":
		tm, bit = &s.RestoredAt, 1<<18
	case "pending":
		v, ok := r.str()
		s.Pending = Pending(v)
		return 1 << 19, ok
	case "pending_since":
		tm, bit = &s.PendingSince, 1<<20
	case "attempt":
		num, bit = &s.Attempt, 1<<21
	case "backup_failures":
		num, bit = &s.BackupFailures, 1<<22
	case "password":
		str, bit = &s.Password, 1<<23
	default:
		return 0, false // unknown, or a known name in another case: encoding/json decides
	}
	var ok bool
	switch {
	case str != nil:
		var v []byte
		v, ok = r.str()
		*str = string(v)
	case tm != nil:
		var v []byte
		if v, ok = r.quoted(); ok {
			ok = tm.UnmarshalJSON(v) == nil
		}
	default:
		*num, ok = r.integer()
	}
	return bit, ok
}

func (r *recordScanner) labels(s *Session) bool {
	if !r.byte('{') {
		return false
	}
	s.Labels = map[string]string{}
	if r.byte('}') {
		return true
	}
	for {
		k, ok := r.str()
		if !ok || !r.byte(':') {
			return false
		}
		v, ok := r.str()
		if !ok {
			return false
		}
		key := string(k)
		if _, dup := s.Labels[key]; dup {
			return false
		}
		s.Labels[key] = string(v)
		if r.byte('}') {
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}
