// Hyperbola activity: tells the control plane when this workspace is really in use, so an
// open but unused tab no longer keeps it awake, and warns before the workspace goes to sleep.
// It reports only a kind ("input", "cpu", "stay") to POST /session/{id}/activity: never a
// file name, a key, a command or any content. Silent unless the workspace's environment names
// the control plane, the session and its activity credential. The decisions are in logic.js.
'use strict';

const vscode = require('vscode');
const fs = require('fs');
const { performance } = require('perf_hooks');
const logic = require('./logic');

const TICK_MS = 5_000; // how often the state of the window, the CPU and the timers are checked
const TIMEOUT_MS = 10_000; // one request's limit
// Documents whose edits are the user's: not output channels (this extension's own log is one),
// git's views or other generated documents.
const EDIT_SCHEMES = new Set(['file', 'untitled', 'vscode-remote', 'vscode-userdata', 'vscode-notebook-cell']);

let out;

function log(msg) {
  if (out) {
    out.appendLine(new Date().toISOString() + ' ' + msg);
  }
}

function activate(context) {
  const cfg = logic.config(process.env);
  if (!cfg) {
    return; // not a Hyperbola workspace with a credential: the heartbeat rule applies
  }
  out = vscode.window.createOutputChannel('Hyperbola');
  context.subscriptions.push(out);
  const a = new Activity(cfg);
  context.subscriptions.push(a);
  a.watch(context.subscriptions);
  log('reporting use of session ' + cfg.session + ' to ' + cfg.url);
}

class Activity {
  constructor(cfg) {
    this.cfg = cfg;
    this.startedAt = performance.now();
    this.strong = ''; // use that is the user's whatever the window says (what, for the log)
    this.weak = ''; // use that counts while the window is active (an edit may be a reload from disk)
    this.becameActive = false;
    this.lastReport = null;
    this.lastReportFailure = null;
    this.lastSync = null;
    this.lastSyncFailure = null;
    this.state = null;
    this.shownFor = null;
    this.busy = false; // a request is under way
    this.samples = [];
    this.cpuFile = cpuSource();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    setTimeout(() => this.tick(), 0);
  }

  watch(subs) {
    const w = vscode.window;
    subs.push(
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length > 0 && EDIT_SCHEMES.has(e.document.uri.scheme)) {
          this.weak = this.weak || 'edit';
        }
      }),
      w.onDidChangeTextEditorSelection((e) => {
        const k = vscode.TextEditorSelectionChangeKind;
        if (e.kind === k.Keyboard || e.kind === k.Mouse) {
          this.strong = this.strong || 'selection';
        }
      }),
      w.onDidChangeActiveTextEditor(() => { this.weak = this.weak || 'editor'; }),
      w.onDidOpenTerminal(() => { this.weak = this.weak || 'terminal opened'; }),
      w.onDidChangeTerminalState((t) => {
        if (t.state && t.state.isInteractedWith) {
          this.strong = this.strong || 'terminal';
        }
      }),
      w.onDidChangeWindowState((s) => {
        if (s.active && !this.lastActive) {
          this.becameActive = true;
        }
        this.lastActive = s.active;
      }),
    );
    this.lastActive = w.state.active;
  }

  dispose() {
    clearInterval(this.timer);
  }

  tick() {
    try {
      this.step();
    } catch (err) {
      log('tick: ' + (err && err.stack ? err.stack : err));
    }
  }

  step() {
    const now = performance.now();
    this.sampleCPU(now);
    const ws = vscode.window.state;
    const active = ws.active;
    // the most telling reason first (they are all "input"; the reason is only logged)
    const why = this.strong || (active ? this.weak : '') ||
      (logic.windowInUse(ws, now, this.startedAt, this.becameActive) ? 'window' : '') ||
      (vscode.debug.activeDebugSession ? 'debugging' : '');
    if (!active) {
      this.weak = ''; // an edit nobody was there to make
    }
    this.showNotice(now);
    if (this.busy) {
      return;
    }
    const cores = logic.cpuCores(this.samples);
    const kind = logic.reportKind({
      now, lastReport: this.lastReport, lastFailure: this.lastReportFailure, sawInput: !!why,
      cpuCores: cores, cpuThreshold: this.cfg.cpuThreshold, reportMs: this.cfg.reportMs,
    });
    if (kind) {
      this.strong = '';
      this.weak = '';
      this.becameActive = false;
      this.report(kind, kind === 'input' ? why : cores.toFixed(2) + ' cores');
      return;
    }
    if (logic.syncDue({ now, lastSync: this.lastSync, lastFailure: this.lastSyncFailure, syncMs: this.cfg.syncMs, state: this.state })) {
      this.sync();
    }
  }

  showNotice(now) {
    const secs = logic.notice(this.state, now, this.shownFor);
    if (secs === null) {
      return;
    }
    this.shownFor = this.state.sleepID;
    log('notice: going to sleep in ' + secs + ' s');
    vscode.window.showWarningMessage(logic.noticeText(secs), 'Stay').then((choice) => {
      if (choice === 'Stay') {
        this.report('stay', 'the notice');
      }
    }, (err) => log('notice: ' + err));
  }

  // report POSTs a kind; 'stay' goes out at once, whatever else is under way.
  report(kind, why) {
    const at = performance.now();
    if (kind !== 'stay') {
      this.busy = true;
      this.lastReport = at;
    }
    this.request('POST', JSON.stringify({ kind })).then((answer) => {
      log('reported ' + kind + ' (' + why + ')');
      this.lastReportFailure = null;
      this.took(answer, at);
    }, (err) => {
      log('report ' + kind + ' failed, trying again later: ' + err.message);
      if (kind === 'stay') {
        this.strong = this.strong || 'stay'; // the click was use: the next report carries it
      } else {
        this.lastReport = null;
        this.lastReportFailure = performance.now();
        if (kind === 'input') {
          this.strong = this.strong || why;
        }
      }
    }).finally(() => {
      if (kind !== 'stay') {
        this.busy = false;
      }
    });
  }

  sync() {
    const at = performance.now();
    this.busy = true;
    this.request('GET').then((answer) => {
      this.lastSyncFailure = null;
      this.took(answer, at);
    }, (err) => {
      this.lastSyncFailure = performance.now();
      log('reading the state failed, trying again later: ' + err.message);
    }).finally(() => { this.busy = false; });
  }

  took(answer, sentAt) {
    this.lastSync = sentAt;
    this.state = logic.stateFrom(answer, performance.now());
    this.showNotice(performance.now());
  }

  async request(method, body) {
    const headers = { Authorization: 'Bearer ' + this.cfg.token, Accept: 'application/json' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(this.cfg.url, { method, headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) {
      throw new Error(method + ' ' + res.status + ' ' + text.slice(0, 200));
    }
    return JSON.parse(text);
  }

  sampleCPU(now) {
    if (!this.cpuFile) {
      return;
    }
    let usec = null;
    try {
      const text = fs.readFileSync(this.cpuFile.path, 'utf8');
      usec = this.cpuFile.v1 ? logic.parseCgroupV1CPU(text) : logic.parseCgroupCPU(text);
    } catch (err) {
      log('reading ' + this.cpuFile.path + ': ' + err.message);
      this.cpuFile = null;
      return;
    }
    if (usec !== null) {
      this.samples = logic.addSample(this.samples, now, usec);
    }
  }
}

// cpuSource is the file the container's own CPU time is read from: its cgroup v2 cpu.stat,
// else cgroup v1's cpuacct.usage (runc mounts the container's own cgroup there), else none.
// Never /proc/stat: that is the whole node's, and a neighbour's build must not keep this
// workspace awake.
function cpuSource() {
  let dir = null;
  try {
    dir = logic.cgroupPath(fs.readFileSync('/proc/self/cgroup', 'utf8'));
  } catch (err) {
    // no /proc/self/cgroup: try the usual places
  }
  const v2 = dir ? [dir + '/cpu.stat', '/sys/fs/cgroup/cpu.stat'] : ['/sys/fs/cgroup/cpu.stat'];
  for (const p of v2) {
    if (logic.parseCgroupCPU(readOr(p)) !== null) {
      return { path: p, v1: false };
    }
  }
  for (const p of ['/sys/fs/cgroup/cpuacct/cpuacct.usage', '/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage']) {
    if (logic.parseCgroupV1CPU(readOr(p)) !== null) {
      return { path: p, v1: true };
    }
  }
  return null;
}

function readOr(p) {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    return '';
  }
}

function deactivate() {}

module.exports = { activate, deactivate };
