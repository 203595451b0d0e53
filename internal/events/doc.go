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
//	                              number of events recorded), active_until (the time of the
//	                              deletion, or 9999-12-31 while the session lives), and for the
//	                              usage report slept_by/slept_since/sleep_known (the idle
//	                              sweep's cause of the sleeping span it is in), late_at (the
//	                              latest event written out of order) and one_user (every event
//	                              carries the record's user id)
//	sessions/{id}/events/{eid}    one transition: at, type, from, to, actor, detail, storage,
//	                              seq (its commit order within the session), queued (true when
//	                              it was replayed from the Redis queue), recorded_at (server
//	                              time), and prev (written in order: the record's state,
//	                              storage, sleep cause and last event time just before it)
//
// Events live in a subcollection of their session: the record and its event are written in
// one transaction on neighbouring documents, and a session's timeline is one query. The usage
// report selects sessions first (user_id == U, active_until >= From: one composite index,
// user_id + active_until), then reads every event within its window at once (From <= at < To,
// and user_id == U: a collection-group query over the "events" subcollections, on the
// collection-group indexes infra/modules/firestore declares). The state each session was in
// at From, which was the last event before From (a per-session question), it takes from the
// prev of the session's first event within the window, or from the record when there is
// none; only a session those do not tell (records and events written before they were kept,
// an event out of order near From, no event within the window but some after it) is read on
// its own as before: its last event before From, then its events within the window. So a
// report costs two Firestore queries (and two per such session) whatever the number of
// sessions. Until the collection-group indexes are built (Firestore answers
// FAILED_PRECONDITION), every session is read on its own.
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
