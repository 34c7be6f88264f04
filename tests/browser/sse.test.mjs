// The JavaScript client over Server-Sent Events, in real headless Chromium
// (its EventSource) against a real `lightstream serve`: transport 'sse'
// subscribes with a query and publishes over HTTP; transport 'auto' falls
// back to SSE behind a proxy that refuses WebSocket upgrades; an expired
// token is replaced through getToken and the stream goes on; a revoked
// token ends the subscription; a refused subscription says why; after a
// server restart EventSource's Last-Event-ID recovers what was published
// meanwhile (history on Redis).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { createServer, request } from 'node:http';

import { Server, after, before, fixturePath, freePort, launchBrowser, lightstreamBin, makeTmpDir, test, waitFor } from './harness.mjs';

let server;
let browser;
let proxy;
let proxyBase;

const PAGE_HELPERS = `
window.waitUntil = async function (fn, ms, what) {
  const deadline = Date.now() + (ms || 10000);
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + (what || fn));
    await new Promise((r) => setTimeout(r, 20));
  }
};
`;

function admin(...args) {
  /* the bus of serve is CURVE on tcp: --data finds its socket and admin key */
  return execFileSync(lightstreamBin(), ['admin', '--data', server.dataDir, ...args], { encoding: 'utf8' });
}

/* An HTTP proxy that forwards requests (streaming answers as they come) and refuses WebSocket upgrades. */
function startProxy(target) {
  const upgrades = { refused: 0 };
  const srv = createServer((req, res) => {
    const up = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  srv.on('upgrade', (req, socket) => {
    upgrades.refused++;
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, upgrades })));
}

before(async () => {
  const port = await freePort();
  server = new Server({ port, dataDir: makeTmpDir() });
  await server.start();
  proxy = await startProxy(port);
  proxyBase = 'http://127.0.0.1:' + proxy.srv.address().port;
  browser = await launchBrowser();
});

after(async () => {
  if (browser) {
    await browser.close();
  }
  if (proxy) {
    proxy.srv.closeAllConnections();
    proxy.srv.close();
  }
  if (server) {
    await server.stop();
  }
});

async function newPage(t, base) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  t.after(async () => {
    await context.close();
    if (pageErrors.length) {
      throw new Error('uncaught errors in the page: ' + pageErrors.join(' | '));
    }
  });
  await page.goto(base + '/healthz');
  await page.addScriptTag({ url: base + '/lightstream.js' });
  await page.addScriptTag({ content: PAGE_HELPERS });
  admin('import', fixturePath());
  return page;
}

test("transport 'sse': a filtered subscription through EventSource, publishing over HTTP", { timeout: 30000 }, async (t) => {
  const page = await newPage(t, server.base);
  const token = (await server.token('acc1', ['public', 'publisher'])).value;
  const got = await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, transport: 'sse' });
    const seen = { transports: [], all: [], lisbon: [] };
    client.on('transport', (e) => seen.transports.push(e.transport));
    const info = await client.open();
    const s1 = client.stream('acc1', 's1');
    await s1.subscribe((d) => seen.all.push(d));
    await s1.query().equals('city', 'Lisboa').subscribe((d) => seen.lisbon.push(d));
    await s1.publish({ city: 'Porto', n: 1 }, { ack: true });
    await s1.publish({ city: 'Lisboa', n: 2 }, { ack: true });
    s1.publish('text');
    await waitUntil(() => seen.all.length === 3 && seen.lisbon.length === 1, 5000, 'deliveries');
    let refused = null;
    try {
      await client.stream('acc1', 's2').publish('x', { ack: true });
    } catch (e) {
      refused = e.code;
    }
    const out = { info, transport: client.transport, can: client.can('acc1', 's1', 'read'), seen, refused };
    await client.close();
    return out;
  }, { url: server.wsUrl, token });
  assert.equal(got.transport, 'sse');
  assert.deepEqual(got.seen.transports, ['sse']);
  assert.equal(got.info.connectionId, null);
  assert.equal(got.can, null);
  assert.deepEqual(got.seen.all, [{ city: 'Porto', n: 1 }, { city: 'Lisboa', n: 2 }, 'text']);
  assert.deepEqual(got.seen.lisbon, [{ city: 'Lisboa', n: 2 }]);
  assert.equal(got.refused, null); /* s2: role public grants write */
});

test("transport 'auto' falls back to SSE behind a proxy that refuses WebSocket", { timeout: 30000 }, async (t) => {
  const page = await newPage(t, proxyBase);
  const token = (await server.token('acc1', ['public', 'publisher'])).value;
  const before = proxy.upgrades.refused;
  const got = await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, transport: 'auto' });
    const seen = { transports: [], data: [] };
    client.on('transport', (e) => seen.transports.push([e.transport, e.reason]));
    await client.open();
    await client.stream('acc1', 's1').subscribe((d) => seen.data.push(d));
    await client.stream('acc1', 's1').publish({ via: 'http' }, { ack: true });
    await waitUntil(() => seen.data.length === 1, 5000, 'the delivery');
    const out = { transport: client.transport, seen };
    await client.close();
    return out;
  }, { url: proxyBase.replace('http', 'ws') + '/lightstream/websocket', token });
  assert.ok(proxy.upgrades.refused > before, 'the WebSocket was tried first');
  assert.equal(got.transport, 'sse');
  assert.equal(got.seen.transports.length, 1);
  assert.equal(got.seen.transports[0][0], 'sse');
  assert.deepEqual(got.seen.data, [{ via: 'http' }]);

  // where nothing answers (the server is down), 'auto' does not switch: the usual error
  const down = await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, transport: 'auto', reconnect: false });
    try {
      await client.open();
      return 'opened';
    } catch (e) {
      return { code: e.code, transport: client.transport };
    }
  }, { url: 'ws://127.0.0.1:' + (await freePort()) + '/lightstream/websocket', token });
  assert.deepEqual(down, { code: 'connection_failed', transport: null });

  // where WebSocket works, 'auto' stays on it
  const direct = await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, transport: 'auto' });
    const info = await client.open();
    const out = { transport: client.transport, connectionId: info.connectionId };
    await client.close();
    return out;
  }, { url: server.wsUrl, token });
  assert.equal(direct.transport, 'websocket');
  assert.ok(direct.connectionId);
});

test('over SSE an expired token is replaced through getToken and the stream goes on', { timeout: 40000 }, async (t) => {
  const page = await newPage(t, server.base);
  await page.exposeFunction('freshToken', async () => (await server.token('acc1', ['public', 'publisher'], { ttl: 3 })).value);
  const pubToken = (await server.token('acc1', ['publisher'])).value;
  const got = await page.evaluate(async ({ url, pubToken }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', getToken: () => window.freshToken(), transport: 'sse',
      reconnect: { initialDelay: 100, maxDelay: 500 } });
    const seen = { data: [], reconnecting: [] };
    client.on('reconnecting', (e) => seen.reconnecting.push(e.error.code));
    await client.open();
    const first = client.token;
    await client.stream('acc1', 's1').subscribe((d) => seen.data.push(d));
    const publish = (n) => fetch('/lightstream/publish/acc1/s1', { method: 'POST', headers: { Authorization: 'Bearer ' + pubToken }, body: JSON.stringify({ n }) });
    await publish(1);
    await waitUntil(() => seen.data.length === 1, 5000, 'the first message');
    await waitUntil(() => seen.reconnecting.indexOf('token_expired') >= 0, 8000, 'the expiry');
    await waitUntil(() => client.token !== first, 5000, 'a fresh token');
    await new Promise((r) => setTimeout(r, 600));
    await publish(2);
    await waitUntil(() => seen.data.length === 2, 5000, 'the message after the expiry');
    const out = { seen, changed: client.token !== first };
    await client.close();
    return out;
  }, { url: server.wsUrl, pubToken });
  assert.deepEqual(got.seen.data, [{ n: 1 }, { n: 2 }]);
  assert.ok(got.changed);
});

test('over SSE a revoked token ends the subscription; a refused one says why', { timeout: 30000 }, async (t) => {
  const page = await newPage(t, server.base);
  const token = (await server.token('acc1', ['public'])).value;
  await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, transport: 'sse' });
    window.seen = { revoked: [], ended: [], refused: null };
    client.on('revoked', (e) => seen.revoked.push(e.error.code));
    await client.open();
    const sub = await client.stream('acc1', 's1').subscribe(() => {});
    sub.on('ended', (e) => seen.ended.push(e && e.code));
    try {
      await client.stream('svc1', 'weather').subscribe(() => {});
    } catch (e) {
      seen.refused = e.code;
    }
  }, { url: server.wsUrl, token });
  admin('token', 'revoke', 'acc1', '--private-key', 'acc1_private', '--', token);
  const seen = await page.evaluate(async () => {
    await waitUntil(() => seen.ended.length === 1, 5000, 'the end of the subscription');
    return seen;
  });
  assert.equal(seen.refused, 'forbidden');
  assert.deepEqual(seen.revoked, ['token_revoked']);
  assert.deepEqual(seen.ended, ['token_revoked']);
});

test('over SSE, EventSource recovers what was published while the server was down (Last-Event-ID)', { timeout: 60000 }, async (t) => {
  const rport = await freePort();
  const redis = spawn('redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  t.after(() => redis.kill('SIGKILL'));
  await waitFor(() => new Promise((resolve) => {
    const sock = connect(rport, '127.0.0.1', () => { sock.end(); resolve(true); });
    sock.on('error', () => resolve(false));
  }), { what: 'redis-server' });
  const srv = new Server({ port: await freePort(), dataDir: makeTmpDir(), extraArgs: ['--redis', 'redis://127.0.0.1:' + rport] });
  await srv.start();
  t.after(() => srv.stop());
  const page = await newPage(t, srv.base);
  const token = (await srv.token('acc1', ['public', 'publisher'])).value;
  await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, transport: 'sse' });
    window.got = [];
    await client.open();
    await client.stream('acc1', 's1').subscribe((d) => got.push(d));
    await client.stream('acc1', 's1').publish(1, { ack: true });
    await waitUntil(() => got.length === 1, 5000, 'the first message');
  }, { url: srv.wsUrl, token });
  await srv.stop();
  // published with history while no gateway runs: only a recovery can bring them
  for (const n of [2, 3]) {
    execFileSync('redis-cli', ['-p', String(rport), 'FCALL', 'ls_publish', '2', 'ls:{acc1:s1}', 'ls:{acc1:s1}:h', String(n)]);
  }
  await srv.start({ fixture: false });
  const got = await page.evaluate(async () => {
    await waitUntil(() => got.length >= 3, 20000, 'the recovered messages');
    await new Promise((r) => setTimeout(r, 300));
    return got;
  });
  assert.deepEqual(got, [1, 2, 3]);
});
