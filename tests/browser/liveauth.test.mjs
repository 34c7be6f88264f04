// Live authorization in the JavaScript client, in real headless Chromium
// against a real `lightstream serve`: a role change ends a subscription
// (its 'ended' event) and announces the new permissions
// ('permissionsChanged'); a revoked token closes the connection with 4011
// ('revoked'), after which the client stops — or, given getToken, comes
// back with a fresh token and its subscriptions.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { Server, after, before, fixturePath, fixtureSecret, freePort, launchBrowser, lightstreamBin, makeTmpDir, test } from './harness.mjs';

let server;
let browser;

const PAGE_HELPERS = `
window.waitUntil = async function (fn, ms, what) {
  const deadline = Date.now() + (ms || 10000);
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + (what || fn));
    await new Promise((r) => setTimeout(r, 20));
  }
};
`;

/* `lightstream admin` against the server's bus. */
function admin(...args) {
  /* the bus of serve is CURVE on tcp: --data finds its socket and admin key */
  return execFileSync(lightstreamBin(), ['admin', '--data', server.dataDir, ...args], { encoding: 'utf8' });
}

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
  admin('import', fixturePath());
  return page;
}

test('a withdrawn read permission ends the subscription; the client learns its new permissions', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', ['public', 'weather-reader'])).value;
  await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token });
    window.client = client;
    window.events = { permissions: [], ended: [], s2: [], errors: [] };
    client.on('permissionsChanged', (e) => events.permissions.push(e.permissions));
    client.on('error', (e) => events.errors.push(e.code));
    await client.open();
    window.weather = await client.stream('svc1', 'weather').subscribe(() => {});
    weather.on('ended', (e) => events.ended.push({ code: e && e.code, name: e && e.name, message: e && e.message }));
    window.s2 = await client.stream('acc1', 's2').subscribe((d) => events.s2.push(d));
    return client.can('svc1', 'weather', 'read');
  }, { url: server.wsUrl, token });

  admin('role', 'delete', 'acc1', 'weather-reader');

  const r = await page.evaluate(async () => {
    await waitUntil(() => events.ended.length > 0 && events.permissions.length > 0, 5000, 'ended and permissionsChanged');
    await client.stream('acc1', 's2').publish({ n: 1 }, { ack: true });
    await waitUntil(() => events.s2.length > 0, 5000, 'delivery on the other subscription');
    return {
      ended: events.ended,
      permissions: events.permissions[0],
      canReadWeather: client.can('svc1', 'weather', 'read'),
      weatherActive: weather.active,
      weatherError: weather.error && weather.error.code,
      s2Active: s2.active,
      s2: events.s2,
      state: client.state,
    };
  });
  assert.deepEqual(r.ended.map((e) => e.code), ['forbidden']);
  assert.equal(r.ended[0].name, 'LightStreamError');
  assert.ok(r.permissions.every((p) => p.owner === 'acc1'), JSON.stringify(r.permissions));
  assert.equal(r.canReadWeather, false);
  assert.equal(r.weatherActive, false);
  assert.equal(r.weatherError, 'forbidden');
  assert.equal(r.s2Active, true);
  assert.deepEqual(r.s2, [{ n: 1 }]);
  assert.equal(r.state, 'open');
});

test('a revoked token closes with 4011; without getToken the client stops and says why', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const token = (await server.token('acc1', ['public'])).value;
  await page.evaluate(async ({ url, token }) => {
    const client = LightStream.createClient({ url, appKey: 'acc1', token });
    window.client = client;
    window.events = { revoked: [], close: [], ended: [] };
    client.on('revoked', (e) => events.revoked.push({ code: e.error.code, willReconnect: e.willReconnect }));
    client.on('close', (e) => events.close.push({ code: e.code, willReconnect: e.willReconnect, error: e.error && e.error.code }));
    await client.open();
    const sub = await client.stream('acc1', 's1').subscribe(() => {});
    sub.on('ended', (e) => events.ended.push(e && e.code));
  }, { url: server.wsUrl, token });

  admin('token', 'revoke', 'acc1', '--private-key', fixtureSecret('acc1').privateKey, '--', token);

  const r = await page.evaluate(async () => {
    await waitUntil(() => events.close.length > 0, 5000, 'close');
    return { events, state: client.state };
  });
  assert.deepEqual(r.events.revoked, [{ code: 'token_revoked', willReconnect: false }]);
  assert.deepEqual(r.events.close, [{ code: 4011, willReconnect: false, error: 'token_revoked' }]);
  assert.deepEqual(r.events.ended, ['token_revoked']);
  assert.equal(r.state, 'closed');
});

test('a revoked token with getToken: the client comes back with a fresh token and its subscriptions', { timeout: 30000 }, async (t) => {
  const page = await newPage(t);
  const first = (await server.token('acc1', ['public'])).value;
  const secret = fixtureSecret('acc1').privateKey;
  await page.evaluate(async ({ url, first, secret }) => {
    window.tokens = [];
    const getToken = async () => {
      const r = await fetch('/lightstream/services/auth/generatetoken?publicKey=acc1&privateKey=' + encodeURIComponent(secret) + '&roles=public');
      const data = (await r.json()).data;
      tokens.push(data.value);
      return data;
    };
    const client = LightStream.createClient({ url, appKey: 'acc1', token: first, getToken, reconnect: { initialDelay: 50, maxDelay: 200 } });
    window.client = client;
    window.events = { revoked: [], opens: [], got: [] };
    client.on('revoked', (e) => events.revoked.push({ code: e.error.code, willReconnect: e.willReconnect }));
    client.on('open', (e) => events.opens.push(e.reconnected));
    await client.open();
    window.sub = await client.stream('acc1', 's2').subscribe((d) => events.got.push(d));
  }, { url: server.wsUrl, first, secret });

  admin('token', 'revoke', 'acc1', '--private-key', secret, '--', first);

  const r = await page.evaluate(async () => {
    await waitUntil(() => events.opens.length >= 2, 10000, 'reconnected');
    await waitUntil(() => sub.id !== null, 5000, 'subscribed again');
    await client.stream('acc1', 's2').publish('after', { ack: true });
    await waitUntil(() => events.got.length > 0, 5000, 'delivery after the reconnect');
    return { events, token: client.token, tokens, active: sub.active };
  });
  assert.deepEqual(r.events.revoked, [{ code: 'token_revoked', willReconnect: true }]);
  assert.deepEqual(r.events.opens, [false, true]);
  assert.notEqual(r.token, first);
  assert.ok(r.tokens.includes(r.token));
  assert.deepEqual(r.events.got, ['after']);
  assert.equal(r.active, true);
});
