// Package events keeps Hyperbola's durable records in Firestore: the latest state of every
// session, every transition as an event (with its time and actor), and the usage report
// computed from those events. *Recorder implements session.Recorder.
//
// Document layout (the root collection is Options.Collection, "sessions" by default):
//
//	sessions/{id}                 the durable record: the session's latest fields (user,
//	                              state, image, storage, cpu, memory, idle timeout, labels,
//	                              created/updated/last-activity/expiry times, backup location,
//	                              backup attempt), the last event (type, time, actor), seq (the
//	                              number of events recorded) and active_until (the time of the
//	                              deletion, or 9999-12-31 while the session lives)
//	sessions/{id}/events/{eid}    one transition: at, type, from, to, actor, detail, storage,
//	                              seq (its commit order within the session), queued (true when
//	                              it was replayed from the Redis queue), recorded_at (server time)
//
// Events live in a subcollection of their session because every read of them is per session:
// the usage report selects sessions first (user_id == U, active_until >= From: one composite
// index, user_id + active_until) and then reads each one's timeline within its window (the last
// event before From, then From <= at < To: the automatic single-field index), and reconcile
// reads one session's record. A top-level events collection
// would need the state each session was in at From, which is the last event before From — a
// per-session question either way. The subcollection also lets the record and its event be
// written in one transaction on neighbouring documents.
//
// The record and its event are always written together in one transaction, which also makes a
// write idempotent: an event's id is chosen before the first attempt, and a replay of an event
// already stored changes nothing. An event older than the record's last one (a queued event
// replayed late) is stored in the timeline but does not roll the record back.
//
// When Firestore cannot be written after a few attempts, the event is pushed onto a durable
// queue in Redis (<prefix>events:pending, with a per-session count in
// <prefix>events:pending-sessions), and Record returns an error wrapping ErrQueued and a
// session.KindUnavailable error, which the session Service logs. Flush (run by the sweep and by
// reconcile) drains the queue into Firestore. If Redis cannot take the event either, Record's
// error says so: an event is never dropped silently.
package events
