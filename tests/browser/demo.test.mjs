// The demo page (`/`) of `lightstream serve --demo` in headless Chromium:
// it connects, lists the live weather, and filters it with the form.
// A screenshot is saved to tests/artifacts/demo.png.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { Server, after, before, freePort, launchBrowser, makeTmpDir, sourceRoot, test } from './harness.mjs';

let server;
let browser;
let page;

before(async () => {
  server = new Server({ port: await freePort(), dataDir: makeTmpDir(), demo: true });
  await server.start();
  browser = await launchBrowser();
  page = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
  page.pageErrors = [];
  page.on('pageerror', (e) => page.pageErrors.push(e.message));
});

after(async () => {
  if (browser) {
    await browser.close();
  }
  if (server) {
    await server.stop();
  }
});

/* Runs a test body; when it fails because the server died, say so. */
function live(fn) {
  return async () => {
    try {
      await fn();
    } catch (e) {
      server.checkAlive();
      throw e;
    }
  };
}

/* Submit the form and wait until the new subscription is live. */
async function apply(button, expectInQuery) {
  await page.click(button);
  await page.waitForFunction((text) => document.querySelector('#messages').dataset.state === 'live' &&
    document.querySelector('#query').textContent.includes(text), expectInQuery, { timeout: 10000 });
}

/* The messages the page lists, as {city, temperature, readings}. */
function listed() {
  return page.$$eval('#messages li', (items) => items.map((li) => ({
    city: li.dataset.city,
    temperature: li.dataset.temperature === undefined ? null : Number(li.dataset.temperature),
    readings: li.dataset.readings ? JSON.parse(li.dataset.readings) : null,
    text: li.textContent,
  })));
}

test('the demo page connects and lists live weather messages', { timeout: 30000 }, live(async () => {
  const r = await page.goto(server.base + '/');
  assert.equal(r.status(), 200);
  assert.match(await page.title(), /LightStream/);
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15000 });
  await page.waitForSelector('#messages[data-state="live"]', { timeout: 15000 });
  await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 3, null, { timeout: 20000 });
  const items = await listed();
  assert.ok(items.length >= 3);
  for (const m of items) {
    assert.equal(typeof m.city, 'string', 'each message shows its city: ' + m.text);
    assert.ok(Number.isFinite(m.temperature), 'and its temperature: ' + m.text);
  }
  assert.equal(await page.textContent('#query'), 'none: every message');
}));

test('filtering by city and maximum temperature shows only matching messages', { timeout: 45000 }, live(async () => {
  const before = await listed();
  const city = before[0].city;
  // a bound that the city's latest temperature satisfies, so messages keep coming
  const maxTemp = Math.ceil(before[0].temperature + 8);
  await page.fill('#city', city.toLowerCase()); // the demo compares case-insensitively
  await page.fill('#max-temp', String(maxTemp));
  await apply('#apply', 'lessEquals');
  const q = JSON.parse(await page.textContent('#query'));
  assert.deepEqual(q, {
    mode: 'any',
    where: { and: [
      { field: 'city', op: 'equals', value: city.toLowerCase(), ignoreCase: true },
      { field: 'temperature', op: 'lessEquals', value: maxTemp },
    ] },
  });
  await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 4, null, { timeout: 30000 });
  const items = await listed();
  assert.ok(items.length >= 4);
  for (const m of items) {
    assert.equal(m.city.toLowerCase(), city.toLowerCase(), 'only ' + city + ': ' + m.text);
    assert.ok(m.temperature <= maxTemp, 'at most ' + maxTemp + ' °C: ' + m.text);
  }
  mkdirSync(join(sourceRoot(), 'tests', 'artifacts'), { recursive: true });
  await page.screenshot({ path: join(sourceRoot(), 'tests', 'artifacts', 'demo.png'), fullPage: true });
}));

test('select mode keeps only the readings above the threshold', { timeout: 45000 }, live(async () => {
  await apply('#clear', 'none: every message');
  await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 1, null, { timeout: 20000 });
  // a threshold below the middle of what arrives, so some readings pass and some do not
  const values = (await listed()).flatMap((m) => m.readings || []).filter(Number.isFinite).sort((a, b) => a - b);
  assert.ok(values.length > 0, 'messages carry readings');
  const threshold = values[Math.floor(values.length / 2)] - 0.01;
  await page.fill('#threshold', String(threshold));
  await apply('#apply', '"select"');
  assert.equal(await page.isDisabled('#city'), true, 'message filters are off in select mode');
  await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 2, null, { timeout: 30000 });
  const items = await listed();
  for (const m of items) {
    assert.ok(m.readings.length >= 1, 'messages without a matching reading are not delivered');
    for (const v of m.readings) {
      assert.ok(v > threshold, v + ' > ' + threshold + ': ' + m.text);
    }
  }
  assert.deepEqual(page.pageErrors, []);
}));

test('on a phone-sized screen nothing overflows sideways', { timeout: 30000 }, live(async () => {
  const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  try {
    await phone.goto(server.base + '/');
    await phone.waitForFunction(() => document.querySelectorAll('#messages li').length >= 5, null, { timeout: 20000 });
    const [scroll, client] = await phone.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scroll <= client, 'page width ' + scroll + ' > viewport ' + client);
    // every reading chip is inside the viewport
    const right = await phone.$$eval('#messages .reading, #messages .temp', (els) => Math.max(...els.map((e) => e.getBoundingClientRect().right)));
    assert.ok(right <= client, 'a reading ends at ' + right + ' px, past ' + client);
    assert.equal(await phone.getAttribute('link[rel="icon"]', 'href'), 'favicon.svg');
  } finally {
    await phone.close();
  }
}));
