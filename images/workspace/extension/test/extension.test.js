'use strict';

// extension.js against a stand-in for the vscode module: silent without its environment, and
// with it, a first read of the session's state carrying the credential.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const Module = require('node:module');

function fakeVSCode() {
  const channels = [];
  const event = () => () => ({ dispose() {} });
  return {
    channels,
    api: {
      window: {
        state: { focused: true, active: true },
        createOutputChannel(name) {
          const c = { name, lines: [], appendLine(l) { this.lines.push(l); }, dispose() {} };
          channels.push(c);
          return c;
        },
        showWarningMessage: async () => undefined,
        onDidChangeTextEditorSelection: event(), onDidChangeActiveTextEditor: event(),
        onDidOpenTerminal: event(), onDidChangeTerminalState: event(), onDidChangeWindowState: event(),
      },
      workspace: { onDidChangeTextDocument: event() },
      debug: { activeDebugSession: undefined },
      TextEditorSelectionChangeKind: { Keyboard: 1, Mouse: 2, Command: 3 },
    },
  };
}

function load(vscode) {
  const orig = Module._load;
  Module._load = function (req, ...rest) {
    return req === 'vscode' ? vscode : orig.call(this, req, ...rest);
  };
  try {
    delete require.cache[require.resolve('../extension')];
    return require('../extension');
  } finally {
    Module._load = orig;
  }
}

const ENV = ['HYPERBOLA_ACTIVITY_URL', 'HYPERBOLA_ACTIVITY_TOKEN', 'HYPERBOLA_SESSION_ID'];

test('without its environment the extension does nothing', () => {
  for (const k of ENV) delete process.env[k];
  const v = fakeVSCode();
  const ctx = { subscriptions: [] };
  load(v.api).activate(ctx);
  assert.equal(ctx.subscriptions.length, 0);
  assert.equal(v.channels.length, 0);
});

test('with it, it reads the session state at once, with the credential', async () => {
  const seen = [];
  const srv = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, auth: req.headers.authorization });
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ uuid: 'ab12cd34', now: new Date().toISOString() }));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  process.env.HYPERBOLA_ACTIVITY_URL = 'http://127.0.0.1:' + srv.address().port;
  process.env.HYPERBOLA_ACTIVITY_TOKEN = 'hbact_ab12cd34_x';
  process.env.HYPERBOLA_SESSION_ID = 'ab12cd34';
  const v = fakeVSCode();
  const ctx = { subscriptions: [] };
  try {
    load(v.api).activate(ctx);
    for (let i = 0; i < 100 && seen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(seen[0], { method: 'GET', url: '/session/ab12cd34/activity', auth: 'Bearer hbact_ab12cd34_x' });
    assert.equal(v.channels[0].name, 'Hyperbola');
  } finally {
    for (const d of ctx.subscriptions) d.dispose();
    for (const k of ENV) delete process.env[k];
    srv.close();
  }
});
