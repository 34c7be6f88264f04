// History and recovery in the JavaScript client, in real headless Chromium
// against a real `lightstream serve` on the Redis fabric (a real
// redis-server started here): the server restarts under a subscribed
// client, messages are published meanwhile (through the documented Redis
// function, as any backend may), and the client, once reconnected, shows
// every one of them, in order, with recovered: true.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

import { Server, after, before, freePort, launchBrowser, makeTmpDir, sleep, test, waitFor } from './harness.mjs';

let server;
let browser;
let redis;
let redisPort;

const PAGE_HELPERS = `
window.waitUntil = async function (fn, ms, what) {
  const deadline = Date.now() + (ms || 10000);
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + (what || fn));
    await new Promise((r) => setTimeout(r, 20));
  }
};
`;

function redisCli(...args) {
  return execFileSync('redis-cli', ['-p', String(redisPort), ...args], { encoding: 'utf8' }).trim();
}

before(async () => {
  if (!existsSync('/usr/bin/redis-server')) {
    throw new Error('redis-server is not installed (apt-get install redis-server)');
  }
  redisPort = await freePort();
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
                { stdio: 'ignore' });
  await waitFor(() => {
    try {
      return redisCli('PING') === 'PONG';
    } catch (e) {
      return false;
    }
  }, { what: 'redis-server' });
  const port = await freePort();
  server = new Server({ port, dataDir: makeTmpDir(), extraArgs: ['--redis', 'redis://127.0.0.1:' + redisPort] });
  await server.start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) {
    await browser.close();
  }
  if (server) {
    await server.stop();
  }
  if (redis) {
    redis.kill('SIGKILL');
  }
});

async function newPage(t) {
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
  await page.goto(server.base + '/healthz');
  await page.addScriptTag({ url: server.base + '/lightstream.js' });
  await page.addScriptTag({ content: PAGE_HELPERS });
  return page;
}

test('a server restart on Redis: every missed message arrives, in order, recovered', { timeout: 90000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', 'public')).value;
  await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, reconnect: { initialDelay: 100, maxDelay: 500 } });
    await client.open();
    const got = [];
    const subscribed = [];
    const s2 = client.stream('acc1', 's2');
    const sub = await s2.subscribe((d, meta) => got.push({ d, offset: meta.offset }));
    sub.on('subscribed', (info) => subscribed.push(info));
    const recoveredEvents = [];
    sub.on('recovered', (info) => recoveredEvents.push(info));
    await s2.publish({ n: 1 }, { ack: true });
    await waitUntil(() => got.length === 1, 10000, 'first message');
    window.t = { client, got, subscribed, sub, s2, recoveredEvents };
  }, { url: server.wsUrl, token });
  const before = await page.evaluate(() => ({ epoch: t.sub.epoch, offset: t.sub.offset, got: t.got }));
  assert.equal(typeof before.epoch, 'string');
  assert.equal(before.got[0].offset, before.offset, 'the subscription tracks the last offset');

  await server.stop();
  await waitFor(() => page.evaluate(() => t.client.state === 'reconnecting'), { what: 'the client notices' });
  // Published while the gateway is down, with the Redis function any backend may call.
  for (const n of [2, 3, 4]) {
    redisCli('FCALL', 'ls_publish', '2', 'ls:{acc1:s2}', 'ls:{acc1:s2}:h', JSON.stringify({ n }));
  }
  await server.start({ fixture: false });
  await waitFor(() => page.evaluate(() => t.subscribed.length === 1), { timeout: 20000, what: 'resubscribed' });
  await sleep(200);
  const r = await page.evaluate(async () => {
    await t.s2.publish({ n: 5 }, { ack: true });
    await waitUntil(() => t.got.some((m) => m.d.n === 5), 10000, 'the message after the restart');
    return { got: t.got, subscribed: t.subscribed, recovered: t.sub.recovered, epoch: t.sub.epoch, offset: t.sub.offset, recoveredEvents: t.recoveredEvents };
  });
  assert.deepEqual(r.got.map((m) => m.d.n), [1, 2, 3, 4, 5], 'every message once, in order');
  assert.equal(r.recoveredEvents.length, 1, "the subscription's 'recovered' event");
  assert.equal(r.recoveredEvents[0].recovered, true);
  const first = r.got[0].offset;
  assert.deepEqual(r.got.map((m) => m.offset), [first, first + 1, first + 2, first + 3, first + 4]);
  assert.equal(r.subscribed.length, 1);
  assert.equal(r.subscribed[0].recovered, true);
  assert.equal(r.subscribed[0].resubscribed, true);
  assert.equal(r.recovered, true);
  assert.equal(r.epoch, before.epoch, 'the history in Redis outlived the gateway');
  assert.equal(r.offset, first + 4);
});

test('resuming from a saved position: onSubscribed says recovered, the missed messages follow', { timeout: 60000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', 'public')).value;
  const r = await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token });
    await client.open();
    const s2 = client.stream('acc1', 's2');
    const first = await s2.subscribe(() => {});
    const saved = { epoch: first.epoch, offset: first.offset };
    await first.unsubscribe();
    await s2.publish({ n: 'a' }, { ack: true });
    await s2.publish({ n: 'b' }, { ack: true });
    // e.g. after a page reload, from sessionStorage
    const got = [];
    const infos = [];
    await s2.subscribe((d) => got.push(d), { since: saved, onSubscribed: (i) => infos.push(i) });
    await waitUntil(() => got.length === 2, 10000, 'the missed messages');
    let bad = null;
    try {
      await s2.subscribe(() => {}, { since: { epoch: 'a:b', offset: 1 } });
    } catch (e) {
      bad = e.code;
    }
    await client.close();
    return { got, infos, bad };
  }, { url: server.wsUrl, token });
  assert.deepEqual(r.got, [{ n: 'a' }, { n: 'b' }]);
  assert.equal(r.infos.length, 1);
  assert.equal(r.infos[0].recovered, true);
  assert.equal(r.infos[0].resubscribed, false);
  assert.equal(r.bad, 'invalid_argument');
});

test('a lost history (FLUSHALL) is said: recovered false, live from the new epoch', { timeout: 60000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', 'public')).value;
  await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, reconnect: { initialDelay: 100, maxDelay: 500 } });
    await client.open();
    const got = [];
    const subscribed = [];
    const s2 = client.stream('acc1', 's2');
    const sub = await s2.subscribe((d) => got.push(d));
    sub.on('subscribed', (info) => subscribed.push(info));
    window.t = { client, got, subscribed, sub, s2 };
  }, { url: server.wsUrl, token });
  const epoch = await page.evaluate(() => t.sub.epoch);
  await server.stop();
  await waitFor(() => page.evaluate(() => t.client.state === 'reconnecting'), { what: 'the client notices' });
  redisCli('FLUSHALL');
  await server.start({ fixture: false });
  await waitFor(() => page.evaluate(() => t.subscribed.length === 1), { timeout: 20000, what: 'resubscribed' });
  const r = await page.evaluate(async () => {
    await t.s2.publish({ n: 'new' }, { ack: true });
    await waitUntil(() => t.got.length === 1, 10000, 'a live message');
    return { subscribed: t.subscribed, epoch: t.sub.epoch, got: t.got };
  });
  assert.equal(r.subscribed[0].recovered, false);
  assert.notEqual(r.epoch, epoch);
  assert.deepEqual(r.got, [{ n: 'new' }]);
});
