// The JavaScript client in real headless Chromium against a real
// `lightstream serve`: queries, select mode, acknowledged publishes, web
// tokens, client-side permission checks, reconnect after a server restart,
// and token renewal through getToken().
import assert from 'node:assert/strict';

import { Server, after, before, fixtureSecret, freePort, launchBrowser, makeTmpDir, test, waitFor, webTokenSignature } from './harness.mjs';

let server;
let browser;

/* Runs in the page: poll until fn() is truthy. */
const PAGE_HELPERS = `
window.waitUntil = async function (fn, ms, what) {
  const deadline = Date.now() + (ms || 10000);
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + (what || fn));
    await new Promise((r) => setTimeout(r, 20));
  }
};
window.errorInfo = function (e) { return { name: e && e.name, code: e && e.code, message: e && e.message, isLightStreamError: e instanceof LightStream.LightStreamError }; };
`;

before(async () => {
  const port = await freePort();
  server = new Server({ port, dataDir: makeTmpDir() });
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
});

/* A fresh page on the gateway's origin with lightstream.js (or another build) loaded from the gateway. */
async function newPage(t, script = '/lightstream.js') {
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
  const r = await page.goto(server.base + '/healthz');
  assert.equal(r.status(), 200);
  await page.addScriptTag({ url: server.base + script });
  await page.addScriptTag({ content: PAGE_HELPERS });
  assert.equal(await page.evaluate(() => typeof LightStream.createClient), 'function', 'the gateway serves lightstream.js');
  return page;
}

test('connect, then subscribe with a query: only matching messages arrive', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', 'public')).value;
  const r = await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token });
    const info = await client.open();
    const s2 = client.stream('acc1', 's2');
    const matched = [];
    const all = [];
    const sub = await s2.query().equals('city', 'Lisboa').less('temperature', 15).subscribe((d, meta) => matched.push({ d, stream: meta.stream }));
    await s2.subscribe((d) => all.push(d));
    const msgs = [
      { city: 'Lisboa', temperature: 12, n: 1 },
      { city: 'Porto', temperature: 10, n: 2 },
      { city: 'Lisboa', temperature: 20, n: 3 },
      { city: 'Lisboa', temperature: 5, n: 4 },
    ];
    for (const m of msgs) {
      await s2.publish(m, { ack: true });
    }
    await waitUntil(() => all.length >= 4 && matched.some((x) => x.d.n === 4), 10000, 'deliveries');
    const state = client.state;
    await sub.unsubscribe();
    await s2.publish({ city: 'Lisboa', temperature: 1, n: 5 }, { ack: true });
    await waitUntil(() => all.length >= 5, 10000, 'the fifth message');
    await client.close();
    return { info, matched, all, state, subQuery: sub.query, active: sub.active };
  }, { url: server.wsUrl, token });

  assert.equal(typeof r.info.connectionId, 'string');
  assert.ok(r.info.connectionId.length >= 16, 'an unguessable connection id');
  assert.ok(r.info.permissions.some((p) => p.owner === 'acc1' && p.stream === 's2' && p.permission === 3));
  assert.equal(r.state, 'open');
  assert.deepEqual(r.subQuery, { mode: 'any', where: { and: [{ field: 'city', op: 'equals', value: 'Lisboa' }, { field: 'temperature', op: 'less', value: 15 }] } });
  assert.deepEqual(r.matched.map((x) => x.d.n), [1, 4], 'exactly the Lisbon messages below 15 °C, in order');
  assert.deepEqual(r.matched[0], { d: { city: 'Lisboa', temperature: 12, n: 1 }, stream: 's2' });
  assert.deepEqual(r.all.map((m) => m.n), [1, 2, 3, 4, 5], 'the unfiltered subscription saw everything');
  assert.equal(r.active, false);
});

/* Subscribe with a query, publish with ack, receive: with whatever LightStream namespace L is. */
async function roundTrip(page, token, moduleUrl) {
  return page.evaluate(async ({ url, token, moduleUrl }) => {
    const L = moduleUrl ? (await import(moduleUrl)).default : LightStream;
    const client = L.createClient({ url, appKey: 'acc1', token });
    await client.open();
    const s2 = client.stream('acc1', 's2');
    const got = [];
    await s2.query().in('kind', ['wanted']).subscribe((d) => got.push(d));
    await s2.publish({ kind: 'unwanted' }, { ack: true });
    await s2.publish({ kind: 'wanted', via: L.version }, { ack: true });
    await waitUntil(() => got.length >= 1, 10000, 'delivery');
    let forbidden = null;
    try {
      client.stream('acc1', 's1').publish(1);
    } catch (e) {
      forbidden = e instanceof L.LightStreamError ? e.code : 'wrong class';
    }
    await client.close();
    return { got, forbidden };
  }, { url: server.wsUrl, token, moduleUrl });
}

test('the minified script and the ES module work in the browser too', { timeout: 30000 }, async (t) => {
  const minPage = await newPage(t, '/lightstream.min.js');
  const min = await roundTrip(minPage, (await server.token('acc1', 'public')).value, null);
  assert.deepEqual(min, { got: [{ kind: 'wanted', via: '0.1.0' }], forbidden: 'forbidden' });
  const esm = await roundTrip(minPage, (await server.token('acc1', 'public')).value, server.base + '/lightstream.mjs');
  assert.deepEqual(esm, { got: [{ kind: 'wanted', via: '0.1.0' }], forbidden: 'forbidden' });
});

test('select mode delivers each message with only its matching readings', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', 'public')).value;
  const got = await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token });
    await client.open();
    const s2 = client.stream('acc1', 's2');
    const got = [];
    await s2.query().select('readings').greater('value', 20).subscribe((d) => got.push(d));
    await s2.publish({ station: 'a', readings: [{ value: 5 }, { value: 25 }, { value: 30 }] }, { ack: true });
    await s2.publish({ station: 'b', readings: [{ value: 1 }, { value: 20 }] }, { ack: true });
    await s2.publish({ station: 'c', readings: [{ value: 21 }] }, { ack: true });
    await waitUntil(() => got.some((d) => d.station === 'c'), 10000, 'station c');
    await client.close();
    return got;
  }, { url: server.wsUrl, token });
  assert.deepEqual(got, [
    { station: 'a', readings: [{ value: 25 }, { value: 30 }] },
    { station: 'c', readings: [{ value: 21 }] },
  ]);
});

test('publish with ack resolves once accepted, and another connection receives it', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const pubToken = (await server.token('acc1', 'publisher')).value;
  const subToken = (await server.token('acc1', 'public')).value;
  const r = await page.evaluate(async ({ url, pubToken, subToken }) => {
    const publisher = LightStream.createClient({ url, appKey: 'acc1', token: pubToken });
    const subscriber = LightStream.createClient({ url, appKey: 'acc1', token: subToken });
    await Promise.all([publisher.open(), subscriber.open()]);
    const got = [];
    await subscriber.stream('acc1', 's1').subscribe((d) => got.push(d));
    const s1 = publisher.stream('acc1', 's1');
    const ack = s1.publish({ hello: 'world', n: 1 }, { ack: true });
    const isPromise = ack instanceof Promise;
    const ackValue = await ack;
    const plain = s1.publish('text message');
    let tooLarge = null;
    try {
      s1.publish('x'.repeat(70 * 1024)); // over the server's 64 KiB frame limit
    } catch (e) {
      tooLarge = e.code;
    }
    await waitUntil(() => got.length >= 2, 10000, 'both messages');
    const publisherState = publisher.state;
    await publisher.close();
    await subscriber.close();
    return { isPromise, ackValue, plain, got, tooLarge, publisherState };
  }, { url: server.wsUrl, pubToken, subToken });
  assert.equal(r.isPromise, true);
  assert.equal(r.ackValue, undefined);
  assert.equal(r.plain, undefined, 'a publish without ack returns nothing');
  assert.deepEqual(r.got, [{ hello: 'world', n: 1 }, 'text message']);
  assert.equal(r.tooLarge, 'too_large', 'an oversized message is refused before sending');
  assert.equal(r.publisherState, 'open', 'and the connection stays up');
});

test('web token: the application backend signs the connection id', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const secret = fixtureSecret('acc1').secretKey;
  const requests = [];
  // The "backend": computes the HMAC with node:crypto; the browser never sees the secret.
  await page.exposeFunction('backendSign', (req) => {
    requests.push(req);
    return webTokenSignature(secret, req.appKey, req.token, req.connectionId);
  });
  const web = (await server.token('acc1', 'public', { webToken: true })).value;
  const r = await page.evaluate(async ({ url, web }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token: web });
    const info = await client.open({ onWebToken: (req) => backendSign(req) });
    const s2 = client.stream('acc1', 's2');
    const got = [];
    await s2.subscribe((d) => got.push(d));
    await s2.publish({ signed: true }, { ack: true });
    await waitUntil(() => got.length === 1, 10000, 'delivery');
    await client.close();

    const forged = LightStream.createClient({ url, appKey: 'acc1', token: web, reconnect: false });
    const forgedErr = await forged.open({ onWebToken: () => '0'.repeat(64) }).then(() => null, errorInfo);

    const unsigned = LightStream.createClient({ url, appKey: 'acc1', token: web, reconnect: false });
    const unsignedErr = await unsigned.open().then(() => null, errorInfo);
    return { info, got, forgedErr, unsignedErr };
  }, { url: server.wsUrl, web });
  assert.deepEqual(r.got, [{ signed: true }]);
  assert.ok(requests.length >= 1);
  assert.equal(requests[0].appKey, 'acc1');
  assert.equal(requests[0].token, web);
  assert.equal(requests[0].connectionId, r.info.connectionId, 'the signed id is the connection id');
  assert.equal(r.forgedErr.code, 'auth_failed', 'a wrong signature is refused');
  assert.equal(r.forgedErr.isLightStreamError, true);
  assert.equal(r.unsignedErr.code, 'auth_failed');
  assert.match(r.unsignedErr.message, /onWebToken/);
});

test('a bad token is refused with auth_failed', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const err = await page.evaluate(async ({ url }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token: 'A'.repeat(43) });
    return client.open().then(() => null, errorInfo);
  }, { url: server.wsUrl });
  assert.equal(err.code, 'auth_failed');
});

test('forbidden operations throw client-side and the connection stays usable', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('svc1', 'public')).value;
  const r = await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'svc1', token });
    const closes = [];
    client.on('close', (ev) => closes.push(ev));
    await client.open();
    const weather = client.stream('svc1', 'weather');
    const attempt = (fn) => {
      try {
        const p = fn();
        return { threw: false, returned: String(p) };
      } catch (e) {
        return Object.assign({ threw: true }, errorInfo(e));
      }
    };
    const publishErr = attempt(() => weather.publish({ temperature: 99 }));
    const ackErr = attempt(() => weather.publish({ temperature: 99 }, { ack: true }));
    const subscribeErr = attempt(() => client.stream('acc1', 's1').subscribe(() => {}));
    const tooLarge = attempt(() => client.stream('svc1', 'weather').query().equals('x', 'y'.repeat(5000)).toJSON());
    const sub = await weather.subscribe(() => {});
    const r = { tooLarge, publishErr, ackErr, subscribeErr, canRead: weather.canRead, canWrite: weather.canWrite, subscribed: sub.active, state: client.state };
    await client.close();
    return Object.assign(r, { closes, activeAfterClose: sub.active });
  }, { url: server.wsUrl, token });
  for (const e of [r.publishErr, r.ackErr, r.subscribeErr]) {
    assert.equal(e.threw, true, 'throws synchronously');
    assert.equal(e.code, 'forbidden');
    assert.equal(e.isLightStreamError, true);
  }
  assert.match(r.publishErr.message, /write permission on svc1\/weather/);
  assert.match(r.subscribeErr.message, /read permission on acc1\/s1/);
  assert.equal(r.tooLarge.code, 'invalid_query', 'a query over 4 KiB is refused before sending');
  assert.equal(r.canRead, true);
  assert.equal(r.canWrite, false);
  assert.equal(r.subscribed, true, 'an allowed subscribe still works');
  assert.equal(r.state, 'open');
  assert.equal(r.closes.length, 1, 'only the final close()');
  assert.equal(r.closes[0].code, 1000);
  assert.equal(r.activeAfterClose, false, 'close() ends subscriptions');
});

test('reconnects after a server restart and re-subscribes every live subscription', { timeout: 60000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', 'public')).value;
  // a second client with a web token: it must be signed again for its new connection
  const web = (await server.token('acc1', 'public', { webToken: true })).value;
  const secret = fixtureSecret('acc1').secretKey;
  const signed = [];
  await page.exposeFunction('backendSign', (req) => {
    signed.push(req.connectionId);
    return webTokenSignature(secret, req.appKey, req.token, req.connectionId);
  });
  // and a third that gets its tokens from the "backend": it asks for a fresh one after the loss
  // (issued in advance: the backend must not depend on the server being restarted)
  const pool = [(await server.token('acc1', 'public')).value, (await server.token('acc1', 'public')).value];
  let issued = 0;
  await page.exposeFunction('backendToken', () => pool[Math.min(issued++, pool.length - 1)]);
  await page.evaluate(async ({ url, token, web }) => {
    const tokenClient = LightStream.createClient({ url, appKey: 'acc1', getToken: () => backendToken(), reconnect: { initialDelay: 100, maxDelay: 1000 } });
    await tokenClient.open();
    window.tokenClient = tokenClient;
    window.firstToken = tokenClient.token;
    const webClient = LightStream.createClient({ url, appKey: 'acc1', token: web, reconnect: { initialDelay: 100, maxDelay: 1000 } });
    await webClient.open({ onWebToken: (req) => backendSign(req) });
    window.webClient = webClient;
    const client = LightStream.createClient({ url, appKey: 'acc1', token, maxQueuedMessages: 2, reconnect: { initialDelay: 100, maxDelay: 1000 } });
    const events = [];
    for (const name of ['open', 'close', 'reconnecting']) {
      client.on(name, (ev) => events.push({ name, code: ev.code, willReconnect: ev.willReconnect, reconnected: ev.reconnected, errorCode: ev.error && ev.error.code }));
    }
    await client.open();
    const got = [];
    const s2 = client.stream('acc1', 's2');
    const filtered = await s2.query().greater('n', 0).subscribe((d) => got.push(d));
    await s2.publish({ n: 1 }, { ack: true });
    await waitUntil(() => got.length === 1, 10000, 'first message');
    window.t = { client, events, got, s2, filtered };
  }, { url: server.wsUrl, token, web });

  await server.stop();
  await waitFor(() => page.evaluate(() => t.events.some((e) => e.name === 'reconnecting')), { what: 'reconnecting event' });
  const offline = await page.evaluate(() => {
    // Published while offline: queued (at most maxQueuedMessages), sent after re-authentication.
    t.s2.publish({ n: 2, queued: true });
    t.s2.publish({ n: -2, queued: true });
    let overflow = null;
    try {
      t.s2.publish({ n: 99 });
    } catch (e) {
      overflow = e.code;
    }
    return { state: t.client.state, events: t.events.slice(), overflow };
  });
  assert.equal(offline.state, 'reconnecting');
  assert.equal(offline.overflow, 'queue_full', 'the offline queue is bounded');
  const close = offline.events.find((e) => e.name === 'close');
  assert.ok(close, 'a close event');
  assert.equal(close.willReconnect, true);

  await server.start({ fixture: false }); // same port, same data: the token is still valid
  await waitFor(() => page.evaluate(() => t.client.state === 'open'), { timeout: 20000, what: 'reconnected' });
  await waitFor(() => page.evaluate(() => webClient.state === 'open'), { timeout: 20000, what: 'the web-token client reconnected' });
  assert.equal(signed.length, 2, 'the backend signed both connections');
  assert.notEqual(signed[0], signed[1], 'each connection has its own id');
  assert.equal(await page.evaluate(() => webClient.connectionId), signed[1]);
  await waitFor(() => page.evaluate(() => tokenClient.state === 'open'), { timeout: 20000, what: 'the getToken client reconnected' });
  assert.equal(issued, 2, 'getToken() was asked again for the new connection');
  assert.deepEqual(await page.evaluate(() => [firstToken, tokenClient.token]), pool, 'and its fresh token is the one in use');
  const r = await page.evaluate(async () => {
    await t.s2.publish({ n: 3 }, { ack: true });
    await t.s2.publish({ n: -1 }, { ack: true }); // filtered out by the re-sent query
    await t.s2.publish({ n: 4 }, { ack: true });
    await waitUntil(() => t.got.some((d) => d.n === 4), 10000, 'messages after the restart');
    const out = { got: t.got, events: t.events, active: t.filtered.active, id: t.filtered.id };
    await t.client.close();
    await webClient.close();
    await tokenClient.close();
    return out;
  });
  assert.deepEqual(r.got, [{ n: 1 }, { n: 2, queued: true }, { n: 3 }, { n: 4 }], 'the same callback keeps receiving, with the query');
  assert.equal(r.active, true);
  assert.equal(typeof r.id, 'string');
  const opens = r.events.filter((e) => e.name === 'open');
  assert.equal(opens.length, 2);
  assert.equal(opens[0].reconnected, false);
  assert.equal(opens[1].reconnected, true);
});

test('an expiring token is renewed through getToken() without losing the connection', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  let issued = 0;
  await page.exposeFunction('backendToken', async () => {
    issued++;
    return (await server.token('acc1', 'public', { ttl: 3 })).value;
  });
  const r = await page.evaluate(async ({ url }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', getToken: () => backendToken() });
    const events = [];
    for (const name of ['open', 'close', 'refresh']) {
      client.on(name, (ev) => events.push(name));
    }
    await client.open();
    const got = [];
    const s2 = client.stream('acc1', 's2');
    await s2.subscribe((d) => got.push(d));
    await new Promise((res) => setTimeout(res, 4000)); // beyond the first token's 3 s (refreshed at about 2.25 s)
    await s2.publish({ still: 'here' }, { ack: true });
    await waitUntil(() => got.length === 1, 10000, 'delivery after renewal');
    const state = client.state;
    await client.close();
    return { events, state, got };
  }, { url: server.wsUrl });
  assert.equal(r.state, 'open');
  assert.ok(r.events.includes('refresh'), 'the token was refreshed: ' + r.events.join(','));
  assert.deepEqual(r.events.filter((e) => e !== 'refresh'), ['open', 'close'], 'no reconnect was needed');
  assert.ok(issued >= 2, 'getToken() gave the first and the fresh token');
});

test('an expired token closes the connection and the client reconnects with a fresh one', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  await page.exposeFunction('backendToken', async () => (await server.token('acc1', 'public', { ttl: 2 })).value);
  const r = await page.evaluate(async ({ url }) => {
    const client = LightStream.createClient({
      url, appKey: 'acc1', getToken: () => backendToken(), autoRefresh: false, reconnect: { initialDelay: 50 },
    });
    const events = [];
    client.on('close', (ev) => events.push('close:' + (ev.error ? ev.error.code : ev.code)));
    client.on('open', (ev) => events.push(ev.reconnected ? 'reopen' : 'open'));
    await client.open();
    const got = [];
    const s2 = client.stream('acc1', 's2');
    await s2.subscribe((d) => got.push(d));
    await waitUntil(() => events.includes('reopen'), 10000, 'reconnect with a fresh token');
    await s2.publish({ after: 'expiry' }, { ack: true });
    await waitUntil(() => got.length === 1, 10000, 'delivery');
    await client.close();
    return { events, got };
  }, { url: server.wsUrl });
  assert.deepEqual(r.events.slice(0, 3), ['open', 'close:token_expired', 'reopen']);
  assert.deepEqual(r.got, [{ after: 'expiry' }]);
});

test('connection state events, one error on expiry, and errors that name the cause', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const short = (await server.token('acc1', 'public', { ttl: 2 })).value;
  const r = await page.evaluate(async ({ url, short }) => {
    // A token that expires, no getToken(): one error event, then the close.
    const client = LightStream.createClient({ url, appKey: 'acc1', token: short, autoRefresh: false, reconnect: { initialDelay: 50 } });
    const events = [];
    for (const name of ['connecting', 'connected', 'disconnected', 'error']) {
      client.on(name, (ev) => events.push(name + (name === 'error' ? ':' + ev.code : name === 'disconnected' ? ':' + (ev.error && ev.error.code) : '')));
    }
    await client.open();
    await waitUntil(() => events.some((e) => e.startsWith('disconnected')), 10000, 'expiry');
    await new Promise((res) => setTimeout(res, 300));

    // A server that is not there: the error says the connection never opened.
    const nowhere = LightStream.createClient({ url: 'ws://127.0.0.1:9/lightstream/websocket', appKey: 'acc1', token: short, reconnect: { enabled: false } });
    let unreachable = null;
    try {
      await nowhere.open();
    } catch (e) {
      unreachable = errorInfo(e);
    }
    // getToken() whose backend is down (fetch rejects with a TypeError).
    const down = LightStream.createClient({ url, appKey: 'acc1', getToken: () => fetch('http://127.0.0.1:9/token'), reconnect: { enabled: false } });
    let backendDown = null;
    try {
      await down.open();
    } catch (e) {
      backendDown = errorInfo(e);
    }
    return { events, unreachable, backendDown };
  }, { url: server.wsUrl, short });
  assert.deepEqual(r.events, ['connecting', 'connected', 'error:token_expired', 'disconnected:token_expired']);
  assert.equal(r.unreachable.code, 'connection_failed');
  assert.match(r.unreachable.message, /could not connect to ws:\/\/127\.0\.0\.1:9/);
  assert.doesNotMatch(r.unreachable.message, /was lost/);
  assert.equal(r.backendDown.code, 'unavailable', JSON.stringify(r.backendDown));
  assert.match(r.backendDown.message, /could not reach its token backend/);
});

test('reconnecting reports attempt and delay', { timeout: 60000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', 'public', { ttl: 600 })).value;
  await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token, reconnect: { initialDelay: 100, maxDelay: 500 } });
    window.ev = [];
    client.on('disconnected', (e) => window.ev.push({ name: 'disconnected', willReconnect: e.willReconnect }));
    client.on('reconnecting', (e) => window.ev.push({ name: 'reconnecting', attempt: e.attempt, delay: e.delay }));
    client.on('connecting', (e) => window.ev.push({ name: 'connecting', attempt: e.attempt }));
    client.on('connected', (e) => window.ev.push({ name: 'connected', reconnected: e.reconnected }));
    await client.open();
  }, { url: server.wsUrl, token });
  await server.stop();
  await server.start({ fixture: false });
  await page.evaluate(() => waitUntil(() => window.ev.some((e) => e.name === 'connected' && e.reconnected), 20000, 'reconnected'));
  const ev = await page.evaluate(() => window.ev);
  const names = ev.map((e) => e.name);
  assert.deepEqual(names.slice(0, 4), ['connecting', 'connected', 'disconnected', 'reconnecting'], JSON.stringify(ev));
  assert.equal(ev[2].willReconnect, true);
  assert.equal(ev[3].attempt, 1);
  assert.ok(ev[3].delay >= 0 && ev[3].delay <= 500, JSON.stringify(ev[3]));
  assert.equal(names[names.length - 1], 'connected');
  assert.equal(names[names.length - 2], 'connecting');
});
