/*
 * Demo page: a live, filtered view of the stream svc1/weather that
 * `lightstream serve --demo` publishes.
 */
(function () {
  'use strict';

  /*
   * DEMO ONLY. This page asks the gateway for a token itself, sending the
   * svc1 account's PRIVATE key from the browser. That is acceptable here
   * only because the demo account is public test data and the gateway
   * answers generatetoken from loopback peers only. A real web application
   * never does this: its own backend (which keeps the private key) requests
   * the token and hands the browser nothing but the token — e.g. getToken:
   * () => fetch('/my-backend/lightstream-token').then(r => r.text()).
   */
  const DEMO_CONFIG = Object.freeze({
    appKey: 'svc1',
    privateKeyForDemoOnly: 'svc1_private',
    roles: 'public',
    tokenTtl: 3600,
    owner: 'svc1',
    stream: 'weather',
    maxShown: 100,
    /* the numeric field of a reading that "Only readings above" compares;
       taken from the first of these that the live messages carry */
    readingFields: ['temperature', 'value'],
  });

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'),
    form: $('filter'),
    messageFilter: $('message-filter'),
    city: $('city'),
    cities: $('cities'),
    maxTemp: $('max-temp'),
    threshold: $('threshold'),
    clear: $('clear'),
    query: $('query'),
    error: $('error'),
    count: $('count'),
    list: $('messages'),
  };

  const demo = { client: null, stream: null, subscription: null, received: 0, cities: new Set(), readingField: null };

  /* The reading field to filter on, learned from the messages seen so far. */
  function readingField() {
    return demo.readingField || DEMO_CONFIG.readingFields[0];
  }

  function learnReadingField(readings) {
    if (demo.readingField || !Array.isArray(readings)) {
      return;
    }
    const r = readings.find((x) => x && typeof x === 'object');
    if (!r) {
      return;
    }
    demo.readingField = DEMO_CONFIG.readingFields.find((f) => typeof r[f] === 'number') ||
      Object.keys(r).find((f) => typeof r[f] === 'number') || null;
  }
  window.lightstreamDemo = demo; /* for the curious (and the browser tests) */

  async function getToken() {
    const r = await fetch('/lightstream/services/auth/generatetoken', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        publicKey: DEMO_CONFIG.appKey,
        privateKey: DEMO_CONFIG.privateKeyForDemoOnly,
        roles: DEMO_CONFIG.roles,
        ttl: DEMO_CONFIG.tokenTtl,
      }),
    });
    const body = await r.json().catch(() => null);
    if (!r.ok || !body || !body.data) {
      const why = body && body.errors && body.errors[0] ? body.errors[0].message : 'HTTP ' + r.status;
      throw new Error('could not get a token: ' + why);
    }
    return body.data.value;
  }

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }

  function showError(err) {
    if (!err) {
      ui.error.hidden = true;
      ui.error.textContent = '';
      return;
    }
    ui.error.hidden = false;
    ui.error.textContent = (err.code ? err.code + ': ' : '') + err.message;
  }

  function numberOrNull(input) {
    const v = input.value.trim();
    if (v === '') {
      return null;
    }
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }

  /* The form as a query; null when nothing is filtered. */
  function buildQuery() {
    let q = demo.stream.query();
    const threshold = numberOrNull(ui.threshold);
    if (threshold !== null) {
      /* select mode: conditions apply to each element of readings */
      return q.select('readings').greater(readingField(), threshold);
    }
    const city = ui.city.value.trim();
    if (city !== '') {
      q = q.equals('city', city).ignoreCase();
    }
    const maxTemp = numberOrNull(ui.maxTemp);
    if (maxTemp !== null) {
      q = q.lessEquals('temperature', maxTemp);
    }
    return q.size > 0 ? q : null;
  }

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) {
      e.className = className;
    }
    if (text !== undefined) {
      e.textContent = text;
    }
    return e;
  }

  function fmt(n) {
    return typeof n === 'number' ? (Math.round(n * 10) / 10).toString() : '–';
  }

  function show(data) {
    demo.received++;
    ui.count.textContent = String(demo.received);
    const li = el('li');
    const msg = data && typeof data === 'object' ? data : { value: data };
    if (typeof msg.city === 'string') {
      li.dataset.city = msg.city;
      if (!demo.cities.has(msg.city)) {
        demo.cities.add(msg.city);
        const opt = el('option');
        opt.value = msg.city;
        ui.cities.appendChild(opt);
      }
    }
    if (typeof msg.temperature === 'number') {
      li.dataset.temperature = String(msg.temperature);
    }
    const sent = typeof msg.time === 'string' ? new Date(msg.time) : new Date();
    li.appendChild(el('span', 'time', (isNaN(sent) ? new Date() : sent).toLocaleTimeString()));
    li.appendChild(el('span', 'city', typeof msg.city === 'string' ? msg.city : '?'));
    li.appendChild(el('span', 'temp', fmt(msg.temperature) + ' °C' +
      (typeof msg.humidity === 'number' ? ' · ' + Math.round(msg.humidity) + ' %' : '')));
    const readings = el('span', 'readings');
    if (Array.isArray(msg.readings)) {
      learnReadingField(msg.readings);
      const field = readingField();
      li.dataset.readings = JSON.stringify(msg.readings.map((r) => (r && typeof r === 'object' ? r[field] : r)));
      for (const r of msg.readings) {
        const label = r && typeof r === 'object'
          ? (r.sensor || r.name || '') + ' ' + fmt(r[field])
          : fmt(r);
        readings.appendChild(el('span', 'reading', label.trim()));
      }
    } else {
      readings.appendChild(el('span', 'raw', JSON.stringify(data)));
    }
    li.appendChild(readings);
    ui.list.insertBefore(li, ui.list.firstChild);
    while (ui.list.children.length > DEMO_CONFIG.maxShown) {
      ui.list.removeChild(ui.list.lastChild);
    }
  }

  let generation = 0;

  /* Replace the subscription with one for the form's query. */
  async function resubscribe() {
    const mine = ++generation;
    showError(null);
    let q;
    try {
      q = buildQuery();
    } catch (e) {
      showError(e);
      return;
    }
    ui.messageFilter.disabled = numberOrNull(ui.threshold) !== null;
    ui.query.textContent = q ? JSON.stringify(q.toJSON(), null, 2) : 'none: every message';
    ui.list.dataset.state = 'subscribing';
    const old = demo.subscription;
    demo.subscription = null;
    /* unsubscribe() stops callbacks at once; the server's answer can come later */
    const gone = old ? old.unsubscribe().catch(() => {}) : null;
    ui.list.textContent = '';
    demo.received = 0;
    ui.count.textContent = '0';
    await gone;
    let sub;
    try {
      sub = await demo.stream.subscribe(q, show, { onError: showError });
    } catch (e) {
      showError(e);
      return;
    }
    if (mine !== generation) {
      sub.unsubscribe().catch(() => {}); /* the form changed meanwhile */
      return;
    }
    demo.subscription = sub;
    ui.list.dataset.state = 'live';
  }

  async function start() {
    const client = LightStream.createClient({ appKey: DEMO_CONFIG.appKey, getToken });
    demo.client = client;
    demo.stream = client.stream(DEMO_CONFIG.owner, DEMO_CONFIG.stream);
    client.on('open', (info) => setStatus('open', info.reconnected ? 'reconnected' : 'connected'));
    client.on('reconnecting', (ev) => setStatus('reconnecting', 'reconnecting (attempt ' + ev.attempt + ')…'));
    client.on('close', (ev) => {
      if (!ev.willReconnect) {
        setStatus('closed', 'disconnected');
      }
    });
    client.on('error', showError);
    ui.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      resubscribe();
    });
    ui.clear.addEventListener('click', () => {
      ui.form.reset();
      resubscribe();
    });
    ui.threshold.addEventListener('input', () => {
      ui.messageFilter.disabled = numberOrNull(ui.threshold) !== null;
    });
    setStatus('connecting', 'connecting…');
    try {
      await client.open();
    } catch (e) {
      setStatus('error', 'not connected');
      showError(e);
      return;
    }
    await resubscribe();
  }

  start();
})();
