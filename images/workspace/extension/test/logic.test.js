'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const L = require('../logic');

const full = {
  HYPERBOLA_ACTIVITY_URL: 'http://api.test:8080/',
  HYPERBOLA_ACTIVITY_TOKEN: 'hbact_ab12cd34_mac',
  HYPERBOLA_SESSION_ID: 'ab12cd34',
};

test('config: silent unless the URL, the credential and the session are all set', () => {
  assert.equal(L.config({}), null);
  for (const k of Object.keys(full)) {
    assert.equal(L.config({ ...full, [k]: '' }), null, k + ' empty');
    const env = { ...full };
    delete env[k];
    assert.equal(L.config(env), null, k + ' unset');
  }
  const c = L.config(full);
  assert.equal(c.url, 'http://api.test:8080/session/ab12cd34/activity');
  assert.equal(c.token, 'hbact_ab12cd34_mac');
  assert.equal(c.cpuThreshold, 0.5);
  assert.equal(c.syncMs, 300_000);
  assert.equal(c.reportMs, 60_000);
});

test('config: the threshold and sync period from the environment, bad values fall back', () => {
  const c = L.config({ ...full, HYPERBOLA_ACTIVITY_CPU_THRESHOLD: '1.5', HYPERBOLA_ACTIVITY_SYNC_SECONDS: '5' });
  assert.equal(c.cpuThreshold, 1.5);
  assert.equal(c.syncMs, 5000);
  for (const bad of ['', 'x', '0', '-1', 'NaN', 'Infinity']) {
    const d = L.config({ ...full, HYPERBOLA_ACTIVITY_CPU_THRESHOLD: bad, HYPERBOLA_ACTIVITY_SYNC_SECONDS: bad });
    assert.equal(d.cpuThreshold, 0.5, bad);
    assert.equal(d.syncMs, 300_000, bad);
  }
});

test('reportKind: input before cpu, at most one report a minute, a pause after a failure', () => {
  const base = { now: 100_000, lastReport: null, lastFailure: null, sawInput: false, cpuCores: null, cpuThreshold: 0.5, reportMs: 60_000 };
  const cases = [
    ['nothing seen', {}, null],
    ['input', { sawInput: true }, 'input'],
    ['input and cpu', { sawInput: true, cpuCores: 2 }, 'input'],
    ['cpu at the threshold', { cpuCores: 0.5 }, 'cpu'],
    ['cpu below', { cpuCores: 0.49 }, null],
    ['cpu unknown yet', { cpuCores: null }, null],
    ['59 s after a report', { sawInput: true, lastReport: 41_000 }, null],
    ['60 s after a report', { sawInput: true, lastReport: 40_000 }, 'input'],
    ['10 s after a failure', { sawInput: true, lastFailure: 90_000 }, null],
    ['20 s after a failure', { sawInput: true, lastFailure: 80_000 }, 'input'],
  ];
  for (const [name, over, want] of cases) {
    assert.equal(L.reportKind({ ...base, ...over }), want, name);
  }
});

test('stateFrom: sleep_at by the server clock, not this one', () => {
  // the server's clock is an hour ahead of this machine's: only sleep_at - now matters
  const s = L.stateFrom({ now: '2026-12-03T10:00:00Z', sleep_at: '2026-12-03T10:00:50Z', idle_at: '2026-12-03T09:00:00Z' }, 5_000);
  assert.deepEqual(s, { sleepAt: 55_000, sleepID: Date.parse('2026-12-03T10:00:50Z'), at: 5_000 });
  assert.deepEqual(L.stateFrom({ now: '2026-12-03T10:00:00Z' }, 5_000), { sleepAt: null, sleepID: null, at: 5_000 }, 'no cap: no sleep_at');
  assert.deepEqual(L.stateFrom(null, 1), { sleepAt: null, sleepID: null, at: 1 });
});

test('syncDue: at once, then every sync period, and once again before sleep_at', () => {
  const syncMs = 300_000;
  assert.equal(L.syncDue({ now: 0, lastSync: null, syncMs, state: null }), true, 'never read');
  assert.equal(L.syncDue({ now: 299_000, lastSync: 0, syncMs, state: null }), false);
  assert.equal(L.syncDue({ now: 300_000, lastSync: 0, syncMs, state: null }), true);
  const state = { sleepAt: 200_000, at: 0 }; // sleeps 200 s after the read
  assert.equal(L.syncDue({ now: 109_000, lastSync: 0, syncMs, state }), false);
  assert.equal(L.syncDue({ now: 110_000, lastSync: 0, syncMs, state }), true, 'PRESYNC_MS before sleep_at');
  assert.equal(L.syncDue({ now: 120_000, lastSync: 110_000, syncMs, state }), false, 'read since: not again');
  assert.equal(L.syncDue({ now: 10_000, lastSync: null, lastFailure: 0, syncMs, state: null }), false, 'just failed');
  assert.equal(L.syncDue({ now: 20_000, lastSync: null, lastFailure: 0, syncMs, state: null }), true, 'failed a while ago');
});

test('notice: within the last minute before sleep_at, once per sleep_at', () => {
  const id = Date.parse('2026-12-03T10:00:50Z');
  const state = { sleepAt: 100_000, sleepID: id, at: 0 };
  assert.equal(L.notice(state, 39_000, null), null, '61 s left');
  assert.equal(L.notice(state, 40_000, null), 60);
  assert.equal(L.notice(state, 50_000, null), 50);
  assert.equal(L.notice(state, 99_600, null), 1, 'never "0 s"');
  assert.equal(L.notice(state, 100_000, null), null, 'already past');
  assert.equal(L.notice(state, 50_000, id), null, 'shown for this sleep_at');
  // a later answer about the same sleep arrives with another latency: still shown once
  const again = L.stateFrom({ now: '2026-12-03T10:00:10Z', sleep_at: '2026-12-03T10:00:50Z' }, 61_000);
  assert.equal(L.notice(again, 62_000, id), null, 'the same sleep_at read again');
  assert.equal(L.notice(state, 50_000, id - 60_000), 50, 'shown for an older one');
  assert.equal(L.notice({ sleepAt: null, sleepID: null, at: 0 }, 50_000, null), null, 'no cap');
  assert.equal(L.notice(null, 0, null), null);
  assert.match(L.noticeText(50), /^This workspace is going to sleep in 50 s because nobody is using it\.$/);
});

test('windowInUse: focused and active, past the start-up grace or after becoming active', () => {
  const on = { focused: true, active: true };
  assert.equal(L.windowInUse(on, 10_000, 0, false), false, 'a freshly loaded window is active by itself');
  assert.equal(L.windowInUse(on, 10_000, 0, true), true);
  assert.equal(L.windowInUse(on, L.WINDOW_GRACE_MS, 0, false), true);
  assert.equal(L.windowInUse({ focused: false, active: true }, 1e9, 0, true), false);
  assert.equal(L.windowInUse({ focused: true, active: false }, 1e9, 0, true), false);
});

test('CPU: cgroup v2 cpu.stat, cgroup v1 cpuacct.usage, and the average over a minute', () => {
  const stat = 'usage_usec 123456789\nuser_usec 100\nsystem_usec 23\nnr_periods 0\n';
  assert.equal(L.parseCgroupCPU(stat), 123456789);
  assert.equal(L.parseCgroupCPU('user_usec 1\n'), null);
  assert.equal(L.parseCgroupCPU(''), null);
  assert.equal(L.parseCgroupV1CPU('123456789012\n'), 123456789);
  assert.equal(L.parseCgroupV1CPU('nothing'), null);
  assert.equal(L.parseCgroupV1CPU(''), null);
  assert.equal(L.cgroupPath('0::/\n'), '/sys/fs/cgroup');
  assert.equal(L.cgroupPath('0::/user.slice/a.scope\n'), '/sys/fs/cgroup/user.slice/a.scope');
  assert.equal(L.cgroupPath('1:name=systemd:/x\n'), null);

  let s = [];
  for (let t = 0; t <= 30_000; t += 5_000) {
    s = L.addSample(s, t, t * 1000); // one core
  }
  assert.equal(L.cpuCores(s), null, 'less than a minute of samples');
  for (let t = 35_000; t <= 120_000; t += 5_000) {
    s = L.addSample(s, t, t <= 60_000 ? t * 1000 : 60_000_000 + (t - 60_000) * 250); // then a quarter core
  }
  assert.equal(s[0].at, 60_000, 'keeps a minute');
  assert.equal(L.cpuCores(s), 0.25);
  assert.equal(L.cpuCores([{ at: 0, usec: 10 }, { at: 60_000, usec: 5 }]), null, 'a counter that went backwards');
});

test('package.json: a built-in extension with no dependencies and no build step', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  assert.equal(pkg.publisher, 'hyperbola');
  assert.equal(pkg.name, 'activity');
  assert.equal(pkg.main, './extension.js');
  assert.equal(pkg.dependencies, undefined);
  assert.ok(fs.existsSync(path.join(__dirname, '..', 'extension.js')));
});
