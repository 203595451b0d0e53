// The extension's decisions, free of VS Code and of the clock, so `node --test` checks them:
// its configuration from the environment, when to report use, when to read the session's
// state, when to show the going-to-sleep notice, and the CPU maths.
// Times are milliseconds of a monotonic local clock (performance.now()) unless named *Server*.
'use strict';

// The environment the workspace container gets (internal/activity's Env* constants).
const ENV_URL = 'HYPERBOLA_ACTIVITY_URL';
const ENV_TOKEN = 'HYPERBOLA_ACTIVITY_TOKEN';
const ENV_SESSION = 'HYPERBOLA_SESSION_ID';
const ENV_CPU_THRESHOLD = 'HYPERBOLA_ACTIVITY_CPU_THRESHOLD';
const ENV_SYNC_SECONDS = 'HYPERBOLA_ACTIVITY_SYNC_SECONDS';
// Not part of the deployment's contract: tests shorten the one-report-a-minute spacing with it.
const ENV_REPORT_SECONDS = 'HYPERBOLA_ACTIVITY_REPORT_SECONDS';

const DEFAULT_CPU_THRESHOLD = 0.5; // cores averaged over a minute
const DEFAULT_SYNC_SECONDS = 300;
// REPORT_MS: at most one report of use a minute (the sweep runs once a minute; more says nothing).
const REPORT_MS = 60_000;
// RETRY_MS: a failed request is tried again this much later, not at once (the API may be down).
const RETRY_MS = 20_000;
// NOTICE_LEAD_MS: the notice shows when the sleep is this near (activity.NoticeLead).
const NOTICE_LEAD_MS = 60_000;
// PRESYNC_MS: the state is read again this long before sleep_at, so a report made by another
// window or an API client since the last read moves the notice away before it shows.
const PRESYNC_MS = 90_000;
// CPU_WINDOW_MS: CPU use is averaged over the last minute.
const CPU_WINDOW_MS = 60_000;
// WINDOW_GRACE_MS: VS Code marks a freshly loaded window active (as if the user had just
// pressed a key) and inactive only after 60-70 s without a key or a click; a window that stays
// active past this grace, or becomes active again after being inactive, is a user's.
const WINDOW_GRACE_MS = 90_000;

// config returns the extension's settings from env, or null when it must stay silent (one of
// the URL, the credential or the session id is missing).
function config(env) {
  const url = (env[ENV_URL] || '').trim().replace(/\/+$/, '');
  const token = (env[ENV_TOKEN] || '').trim();
  const session = (env[ENV_SESSION] || '').trim();
  if (!url || !token || !session) {
    return null;
  }
  return {
    url: url + '/session/' + encodeURIComponent(session) + '/activity',
    token,
    session,
    cpuThreshold: positive(env[ENV_CPU_THRESHOLD], DEFAULT_CPU_THRESHOLD),
    syncMs: positive(env[ENV_SYNC_SECONDS], DEFAULT_SYNC_SECONDS) * 1000,
    reportMs: positive(env[ENV_REPORT_SECONDS], REPORT_MS / 1000) * 1000,
  };
}

function positive(s, def) {
  const n = Number(s);
  return s !== undefined && s !== '' && Number.isFinite(n) && n > 0 ? n : def;
}

// reportKind says what to report now, or null: 'input' when use was seen, else 'cpu' when the
// container's CPU over the last minute reached the threshold; never sooner than reportMs after
// the last report, nor RETRY_MS after a failed one.
//   s: {now, lastReport, lastFailure, sawInput, cpuCores, cpuThreshold, reportMs}
function reportKind(s) {
  if (s.lastReport !== undefined && s.lastReport !== null && s.now - s.lastReport < s.reportMs) {
    return null;
  }
  if (s.lastFailure !== undefined && s.lastFailure !== null && s.now - s.lastFailure < RETRY_MS) {
    return null;
  }
  if (s.sawInput) {
    return 'input';
  }
  if (s.cpuCores !== null && s.cpuCores !== undefined && s.cpuCores >= s.cpuThreshold) {
    return 'cpu';
  }
  return null;
}

// stateFrom keeps what the extension needs of an answer of GET/POST /session/{id}/activity,
// received at local time `at`: sleep_at relative to the server's own now (never this
// machine's clock). sleepAt is local time, or null when the session has no cap; sleepID is
// the server's sleep_at itself, which names the sleep the notice is about (sleepAt moves a
// little with each answer's latency).
function stateFrom(answer, at) {
  const now = Date.parse(answer && answer.now);
  const sleep = Date.parse(answer && answer.sleep_at);
  if (!Number.isFinite(now) || !Number.isFinite(sleep)) {
    return { sleepAt: null, sleepID: null, at };
  }
  return { sleepAt: at + (sleep - now), sleepID: sleep, at };
}

// syncDue says whether to read the state now: never before; then every syncMs; and once more
// when sleep_at is PRESYNC_MS away, if the last read was before that.
//   s: {now, lastSync, lastFailure, syncMs, state}
function syncDue(s) {
  if (s.lastFailure !== undefined && s.lastFailure !== null && s.now - s.lastFailure < RETRY_MS) {
    return false;
  }
  if (s.lastSync === null || s.lastSync === undefined) {
    return true;
  }
  let due = s.lastSync + s.syncMs;
  const st = s.state;
  if (st && st.sleepAt !== null) {
    const pre = st.sleepAt - PRESYNC_MS;
    if (s.lastSync < pre) {
      due = Math.min(due, pre);
    }
  }
  return s.now >= due;
}

// notice returns the seconds to show in the going-to-sleep notice, or null: when 0 < sleep_at
// - now <= NOTICE_LEAD_MS by the server's clock, once per sleep_at (shownFor is the sleepID it
// was last shown for).
function notice(state, now, shownFor) {
  if (!state || state.sleepAt === null) {
    return null;
  }
  const left = state.sleepAt - now;
  if (left <= 0 || left > NOTICE_LEAD_MS || shownFor === state.sleepID) {
    return null;
  }
  return Math.max(1, Math.round(left / 1000));
}

function noticeText(seconds) {
  return 'This workspace is going to sleep in ' + seconds + ' s because nobody is using it.';
}

// windowInUse says whether a window's state counts as use: focused and active, and either
// past the grace after the extension started or seen becoming active since.
function windowInUse(state, now, startedAt, becameActive) {
  if (!state || !state.focused || !state.active) {
    return false;
  }
  return becameActive || now - startedAt >= WINDOW_GRACE_MS;
}

// parseCgroupCPU returns usage_usec of a cgroup v2 cpu.stat, or null.
function parseCgroupCPU(text) {
  const m = /^usage_usec\s+(\d+)\s*$/m.exec(text || '');
  return m ? Number(m[1]) : null;
}

// parseCgroupV1CPU returns cgroup v1's cpuacct.usage (nanoseconds) in microseconds, or null.
function parseCgroupV1CPU(text) {
  const m = /^\s*(\d+)\s*$/.exec(text || '');
  return m ? Math.floor(Number(m[1]) / 1000) : null;
}

// cgroupPath returns the cgroup v2 directory of /proc/self/cgroup's "0::" line (in a
// container with its own cgroup namespace it is "/", the container's).
function cgroupPath(text) {
  const m = /^0::(\/.*)$/m.exec(text || '');
  return m ? '/sys/fs/cgroup' + (m[1] === '/' ? '' : m[1]) : null;
}

// addSample adds {at, usec} to samples (oldest first), keeping the newest one at least
// CPU_WINDOW_MS old and everything after it; returns the new array.
function addSample(samples, at, usec) {
  const out = samples.concat([{ at, usec }]);
  let first = 0;
  for (let i = 0; i < out.length; i++) {
    if (at - out[i].at >= CPU_WINDOW_MS) {
      first = i;
    }
  }
  return out.slice(first);
}

// cpuCores returns the cores used on average over the last minute, or null until the samples
// span one (a counter that went backwards, as after a restart, is null too).
function cpuCores(samples) {
  if (samples.length < 2) {
    return null;
  }
  const a = samples[0];
  const b = samples[samples.length - 1];
  if (b.at - a.at < CPU_WINDOW_MS || b.usec < a.usec) {
    return null;
  }
  return (b.usec - a.usec) / 1000 / (b.at - a.at);
}

module.exports = {
  ENV_URL, ENV_TOKEN, ENV_SESSION, ENV_CPU_THRESHOLD, ENV_SYNC_SECONDS, ENV_REPORT_SECONDS,
  REPORT_MS, RETRY_MS, NOTICE_LEAD_MS, PRESYNC_MS, CPU_WINDOW_MS, WINDOW_GRACE_MS,
  config, reportKind, stateFrom, syncDue, notice, noticeText, windowInUse,
  parseCgroupCPU, parseCgroupV1CPU, cgroupPath, addSample, cpuCores,
};
