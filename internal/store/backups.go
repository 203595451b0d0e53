package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The backup catalog (session.Store's backup methods). Keys, under the prefix:
//
//	b:<backup id>   string  the archive's record (session.BackupRecord JSON)
//	bu:<user>       zset    the user's archives, score 0, member "<UTC time>/<backup id>"
//	                        (so a lexicographic range is newest or oldest first)
//	bs:<session>    zset    the session's archives, the same members
//	ball            zset    every archive, the same members
//	bexp            zset    available archives with an expiry, score = ExpiresAt ms
//	brm             zset    archives being removed, score = when they were marked ms
//
// A record and its index entries change together (MULTI/EXEC).

const backupTime = "20060102T150405Z"

func (s *Store) backupKey(id string) string { return s.prefix + "b:" + id }

// backupMember is the archive's member in the lexicographic indexes.
func backupMember(b *session.BackupRecord) string {
	return b.CreatedAt.UTC().Format(backupTime) + "/" + b.ID
}

// PutBackup writes the record and moves its index entries with it.
func (s *Store) PutBackup(ctx context.Context, b *session.BackupRecord) error {
	if b == nil {
		return errors.New("put backup: nil record")
	}
	if err := session.CheckBackupID(b.ID); err != nil {
		return fmt.Errorf("put backup: %w", err)
	}
	if err := session.CheckUserID(b.UserID); err != nil {
		return fmt.Errorf("put backup %s: %w", b.ID, err)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encoding backup %s: %w", b.ID, err)
	}
	m := backupMember(b)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.backupKey(b.ID), raw, 0)
		for _, k := range []string{"bu:" + b.UserID, "bs:" + b.SessionID, "ball"} {
			p.ZAdd(ctx, s.key(k), redis.Z{Member: m})
		}
		if b.State == session.BackupAvailable && !b.ExpiresAt.IsZero() {
			p.ZAdd(ctx, s.key("bexp"), redis.Z{Score: float64(b.ExpiresAt.UnixMilli()), Member: b.ID})
		} else {
			p.ZRem(ctx, s.key("bexp"), b.ID)
		}
		if b.State == session.BackupRemoving {
			p.ZAddNX(ctx, s.key("brm"), redis.Z{Score: float64(s.now().UnixMilli()), Member: b.ID})
		} else {
			p.ZRem(ctx, s.key("brm"), b.ID)
		}
		return nil
	})
	if err != nil {
		return unavailable(fmt.Errorf("put backup %s: %w", b.ID, err))
	}
	return nil
}

// GetBackup reads an archive's record.
func (s *Store) GetBackup(ctx context.Context, id string) (*session.BackupRecord, error) {
	raw, err := s.rdb.Get(ctx, s.backupKey(id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, session.BackupNotFound(id)
	case err != nil:
		return nil, unavailable(fmt.Errorf("get backup %s: %w", id, err))
	}
	var b session.BackupRecord
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("decoding backup %s: %w", id, err)
	}
	return &b, nil
}

// ListBackups pages the catalog newest first (by time, then id) from the user's, the
// session's or the whole index; with both a user and a session, the session's archives of
// that user. Limit is 100 by default and at most 1000; the cursor is opaque.
func (s *Store) ListBackups(ctx context.Context, opts session.BackupListOptions) (*session.BackupList, error) {
	limit, err := pageLimit(opts.Limit)
	if err != nil {
		return nil, err
	}
	index := "ball"
	switch {
	case opts.SessionID != "":
		index = "bs:" + opts.SessionID
	case opts.UserID != "":
		index = "bu:" + opts.UserID
	}
	upper := "+"
	if opts.Cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(opts.Cursor)
		if err != nil || !strings.Contains(string(c), "/") {
			return nil, session.Invalid("cursor", "cursor is not one this API returned")
		}
		upper = "(" + string(c)
	}
	out := &session.BackupList{Backups: []*session.BackupRecord{}}
	// a user filter on a session's index may drop entries: read on until the page is full
	for len(out.Backups) < limit {
		members, err := s.rdb.ZRevRangeByLex(ctx, s.key(index), &redis.ZRangeBy{
			Min: "-", Max: upper, Count: int64(limit - len(out.Backups) + 1),
		}).Result()
		if err != nil {
			return nil, unavailable(fmt.Errorf("list backups: %w", err))
		}
		more := len(members) > limit-len(out.Backups)
		if more {
			members = members[:limit-len(out.Backups)]
		}
		recs, err := s.backupsOf(ctx, members)
		if err != nil {
			return nil, err
		}
		for _, b := range recs {
			if opts.UserID == "" || b.UserID == opts.UserID {
				out.Backups = append(out.Backups, b)
			}
		}
		if !more || len(members) == 0 {
			return out, nil
		}
		last := members[len(members)-1]
		upper = "(" + last
		if len(out.Backups) == limit {
			out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(last))
		}
	}
	return out, nil
}

// backupsOf reads the records of index members ("<time>/<id>") or ids, skipping any whose
// record is gone.
func (s *Store) backupsOf(ctx context.Context, members []string) ([]*session.BackupRecord, error) {
	if len(members) == 0 {
		return nil, nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		if _, id, ok := strings.Cut(m, "/"); ok {
			m = id
		}
		keys[i] = s.backupKey(m)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable(fmt.Errorf("read backups: %w", err))
	}
	out := make([]*session.BackupRecord, 0, len(vals))
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue // removed between the index read and this one
		}
		var b session.BackupRecord
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return nil, fmt.Errorf("decoding backup %s: %w", keys[i], err)
		}
		out = append(out, &b)
	}
	return out, nil
}

// RemoveBackup deletes an archive's record and index entries; an unknown id is not an error.
func (s *Store) RemoveBackup(ctx context.Context, id string) error {
	b, err := s.GetBackup(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	m := backupMember(b)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.backupKey(id))
		for _, k := range []string{"bu:" + b.UserID, "bs:" + b.SessionID, "ball"} {
			p.ZRem(ctx, s.key(k), m)
		}
		p.ZRem(ctx, s.key("bexp"), id)
		p.ZRem(ctx, s.key("brm"), id)
		return nil
	})
	if err != nil {
		return unavailable(fmt.Errorf("remove backup %s: %w", id, err))
	}
	return nil
}

// ExpiredBackups returns up to limit available archives whose expiry is at or before now,
// the oldest expiry first.
func (s *Store) ExpiredBackups(ctx context.Context, now time.Time, limit int) ([]*session.BackupRecord, error) {
	ids, err := s.due(ctx, "bexp", strconv.FormatInt(now.UnixMilli(), 10), limit)
	if err != nil {
		return nil, err
	}
	return s.backupsOf(ctx, ids)
}

// RemovingBackups returns up to limit archives being removed, the longest first.
func (s *Store) RemovingBackups(ctx context.Context, limit int) ([]*session.BackupRecord, error) {
	ids, err := s.due(ctx, "brm", "+inf", limit)
	if err != nil {
		return nil, err
	}
	return s.backupsOf(ctx, ids)
}
