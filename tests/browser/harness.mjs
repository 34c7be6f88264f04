// Helpers of the browser tests: a real `lightstream serve` on a free port,
// tokens over HTTP, headless Chromium through playwright-core. Everything
// started here is stopped when the test file ends, whatever happened.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as nodeTest from 'node:test';

const here = dirname(fileURLToPath(import.meta.url));

export function sourceRoot() {
  return process.env.LIGHTSTREAM_SOURCE_ROOT || join(here, '..', '..');
}

export function fixturePath() {
  return join(sourceRoot(), 'tests', 'fixtures', 'accounts.json');
}

/* The secret keys of tests/fixtures/accounts.json, as a web app's backend would hold them. */
export function fixtureSecret(appKey) {
  const fixture = JSON.parse(readFileSync(fixturePath(), 'utf8'));
  const account = fixture.accounts.find((a) => a.appKey === appKey);
  if (!account) {
    throw new Error('no account ' + appKey + ' in the fixture');
  }
  return account;
}

export function lightstreamBin() {
  const bin = process.env.LIGHTSTREAM_BIN || join(sourceRoot(), 'build', 'cmd', 'lightstream');
  if (!existsSync(bin)) {
    throw new Error('lightstream binary not found at ' + bin + ' (set LIGHTSTREAM_BIN or build it; `meson test` sets it)');
  }
  return bin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const children = new Set();
const tmpDirs = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch (e) { /* gone */ }
  }
  if (!process.env.KEEP_TMP) {
    for (const d of tmpDirs) {
      rmSync(d, { recursive: true, force: true });
    }
  }
});

export function makeTmpDir() {
  const d = mkdtempSync(join(tmpdir(), 'lsbrowser-'));
  tmpDirs.add(d);
  return d;
}

/*
 * A running `lightstream serve`. start() waits until /healthz answers;
 * stop() sends SIGTERM and waits for the exit. The same object can be
 * started again (same port, same data directory).
 */
export class Server {
  constructor({ port, dataDir, fixture = true, demo = false, extraArgs = [] }) {
    this.port = port;
    this.dataDir = dataDir;
    this.fixture = fixture;
    this.demo = demo;
    this.extraArgs = extraArgs;
    this.proc = null;
    this.logFile = join(dataDir, 'serve-' + port + '.log');
    this.base = 'http://127.0.0.1:' + port;
    this.wsUrl = 'ws://127.0.0.1:' + port + '/lightstream/websocket';
  }

  async start({ fixture = this.fixture } = {}) {
    const args = ['serve', '--listen', '127.0.0.1:' + this.port, '--data', this.dataDir];
    if (fixture) {
      args.push('--fixture', fixturePath());
    }
    if (this.demo) {
      args.push('--demo');
    }
    args.push(...this.extraArgs);
    const log = openSync(this.logFile, 'a');
    // Serve this source tree's client and demo, wherever the build directory is.
    const env = Object.assign({}, process.env);
    env.LIGHTSTREAM_STATIC_DIR = env.LIGHTSTREAM_STATIC_DIR || join(sourceRoot(), 'clients', 'js', 'public');
    const proc = spawn(lightstreamBin(), args, { stdio: ['ignore', log, log], cwd: sourceRoot(), env });
    closeSync(log);
    this.proc = proc;
    children.add(proc);
    proc.exitCode_ = null;
    proc.on('exit', (code, sig) => {
      proc.exitCode_ = code === null ? sig : code;
      children.delete(proc);
    });
    const deadline = Date.now() + 20000;
    for (;;) {
      if (proc.exitCode_ !== null) {
        throw new Error('lightstream serve exited (' + proc.exitCode_ + ') before it was ready:\n' + this.logTail());
      }
      try {
        const r = await fetch(this.base + '/healthz', { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) {
          return this;
        }
      } catch (e) {
        /* not listening yet */
      }
      if (Date.now() > deadline) {
        throw new Error('lightstream serve is not healthy after 20 s:\n' + this.logTail());
      }
      await sleep(50);
    }
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode_ !== null) {
      return;
    }
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t);
  }

  /* Throws a clear error when the server died (e.g. crashed) since start(). */
  checkAlive() {
    if (this.proc && this.proc.exitCode_ !== null) {
      throw new Error('lightstream serve exited unexpectedly (' + this.proc.exitCode_ + '); its log ends with:\n' + this.logTail(15));
    }
  }

  logTail(lines = 40) {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch (e) {
      return '(no log)';
    }
  }

  /* generatetoken over HTTP (docs/protocol.md (HTTP)); returns its data object. */
  async token(appKey, roles, { ttl, webToken, privateKey } = {}) {
    const params = new URLSearchParams({
      publicKey: appKey,
      privateKey: privateKey || fixtureSecret(appKey).privateKey,
      roles: Array.isArray(roles) ? roles.join('|') : roles,
    });
    if (ttl !== undefined) {
      params.set('ttl', String(ttl));
    }
    if (webToken) {
      params.set('webToken', 'true');
    }
    const r = await fetch(this.base + '/lightstream/services/auth/generatetoken?' + params);
    const body = await r.json();
    if (r.status !== 200 || !body.data || typeof body.data.value !== 'string') {
      throw new Error('generatetoken failed (' + r.status + '): ' + JSON.stringify(body));
    }
    return body.data;
  }
}

/* What a web app's backend computes for a web token (docs/protocol.md, t=4). */
export function webTokenSignature(secretKey, appKey, token, connectionId) {
  return createHmac('sha256', secretKey).update(appKey + ':' + token + ':' + connectionId).digest('hex');
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/* Debian's chromium driven by playwright-core (no browser download). */
export async function launchBrowser() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error('playwright-core is missing: run `npm ci` in tests/browser (scripts/setup does)');
  }
  const executablePath = process.env.LIGHTSTREAM_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error('chromium not found at ' + executablePath + ' (apt-get install chromium; scripts/setup does)');
  }
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 30000 });
}

/* Poll fn() (may be async) until it returns a truthy value. */
export async function waitFor(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) {
        return last;
      }
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error('timed out waiting for ' + what + (last instanceof Error ? ': ' + last.message : ''));
    }
    await sleep(interval);
  }
}

/*
 * node's TAP reporter prints an error's message as a YAML block; meson's
 * TAP reader ends the block at the first blank line, and playwright's
 * messages carry blank lines and colour codes. These wrappers of node:test
 * tidy every error so a failure is reported as a clean "not ok".
 */
function tidyError(e) {
  if (!(e instanceof Error)) {
    return e;
  }
  const clean = (s) => String(s).replace(/\x1b\[[0-9;]*m/g, '').split('\n')
    .map((l) => l.trimEnd()).filter((l) => l !== '').join('\n');
  let message = clean(e.message);
  if (e.cause) {
    message += '\ncaused by: ' + clean(e.cause && e.cause.message ? e.cause.message : e.cause);
  }
  const out = new Error(message);
  out.stack = 'Error: ' + message + '\n' + clean(e.stack || '').split('\n').filter((l) => /^\s*at /.test(l)).join('\n');
  for (const k of ['actual', 'expected', 'operator', 'code']) {
    if (k in e) {
      out[k] = e[k];
    }
  }
  return out;
}

function tidy(fn) {
  return async function (...args) {
    try {
      return await fn.apply(this, args);
    } catch (e) {
      throw tidyError(e);
    }
  };
}

export function test(name, options, fn) {
  return nodeTest.test(name, options, tidy(fn));
}

export function before(fn) {
  return nodeTest.before(tidy(fn));
}

export function after(fn) {
  return nodeTest.after(tidy(fn));
}
