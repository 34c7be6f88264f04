// Pure JavaScript tests of the query builder (docs/query.md): the JSON it
// produces, and the mistakes it rejects before anything is sent.
import assert from 'node:assert/strict';
import { test } from './harness.mjs';

import LightStream, { query, validateQuery, LightStreamError, QUERY_LIMITS } from '../../clients/js/public/lightstream.mjs';

function rejects(fn, code, pattern) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof LightStreamError, 'a LightStreamError, got ' + e);
    assert.equal(e.code, code);
    if (pattern) {
      assert.match(e.message, pattern);
    }
    return true;
  });
}

test('the documented example: Lisbon below 15 °C', () => {
  const q = query().equals('city', 'Lisboa').less('temperature', 15);
  assert.deepEqual(q.toJSON(), {
    mode: 'any',
    where: {
      and: [
        { field: 'city', op: 'equals', value: 'Lisboa' },
        { field: 'temperature', op: 'less', value: 15 },
      ],
    },
  });
  assert.equal(JSON.stringify(q), '{"mode":"any","where":{"and":[{"field":"city","op":"equals","value":"Lisboa"},{"field":"temperature","op":"less","value":15}]}}');
  assert.equal(String(q), JSON.stringify(q.toJSON()));
});

test('a single condition is not wrapped in "and"', () => {
  assert.deepEqual(query().greater('temperature', 30).toJSON(), {
    mode: 'any',
    where: { field: 'temperature', op: 'greater', value: 30 },
  });
});

test('every operator of docs/query.md produces its JSON', () => {
  const cases = [
    [(q) => q.equals('a', 1), { field: 'a', op: 'equals', value: 1 }],
    [(q) => q.equals('a', { x: [1, null] }), { field: 'a', op: 'equals', value: { x: [1, null] } }],
    [(q) => q.notEquals('a', 'x'), { field: 'a', op: 'notEquals', value: 'x' }],
    [(q) => q.less('a', 1.5), { field: 'a', op: 'less', value: 1.5 }],
    [(q) => q.lessEquals('a', 'm'), { field: 'a', op: 'lessEquals', value: 'm' }],
    [(q) => q.greater('a', -3), { field: 'a', op: 'greater', value: -3 }],
    [(q) => q.greaterEquals('a', 0), { field: 'a', op: 'greaterEquals', value: 0 }],
    [(q) => q.between('a', 10, 20), { field: 'a', op: 'between', value: [10, 20] }],
    [(q) => q.in('a', ['x', 'y']), { field: 'a', op: 'in', value: ['x', 'y'] }],
    [(q) => q.notIn('a', [1, 2]), { field: 'a', op: 'notIn', value: [1, 2] }],
    [(q) => q.contains('tags', 'hot'), { field: 'tags', op: 'contains', value: 'hot' }],
    [(q) => q.startsWith('a', 'Li'), { field: 'a', op: 'startsWith', value: 'Li' }],
    [(q) => q.endsWith('a', 'oa'), { field: 'a', op: 'endsWith', value: 'oa' }],
    [(q) => q.match('a', '^L[a-z]+$'), { field: 'a', op: 'match', value: '^L[a-z]+$' }],
    [(q) => q.match('a', /^li/i), { field: 'a', op: 'match', value: '^li', ignoreCase: true }],
    [(q) => q.exists('location.city'), { field: 'location.city', op: 'exists' }],
    [(q) => q.notExists('a'), { field: 'a', op: 'notExists' }],
    [(q) => q.isEmpty(''), { field: '', op: 'isEmpty' }],
    [(q) => q.type('a', 'array'), { field: 'a', op: 'type', value: 'array' }],
  ];
  for (const [build, where] of cases) {
    assert.deepEqual(build(query()).toJSON(), { mode: 'any', where });
  }
  const ops = new Set(cases.map(([, w]) => w.op));
  assert.equal(ops.size, 17, 'all 17 operators covered');
});

test('ignoreCase() marks the previous condition only', () => {
  const q = query().equals('city', 'lisboa').ignoreCase().startsWith('country', 'P');
  assert.deepEqual(q.toJSON().where.and, [
    { field: 'city', op: 'equals', value: 'lisboa', ignoreCase: true },
    { field: 'country', op: 'startsWith', value: 'P' },
  ]);
  assert.deepEqual(q.ignoreCase().ignoreCase(false).toJSON().where.and[1], { field: 'country', op: 'startsWith', value: 'P' });
  rejects(() => query().ignoreCase(), 'invalid_query', /must follow/);
  rejects(() => query().less('t', 3).ignoreCase(), 'invalid_query', /does not apply to less/);
});

test('or(), and(), not() nest sub-queries given as functions, builders or raw JSON', () => {
  const porto = query().equals('city', 'Porto');
  const q = query()
    .or((x) => x.equals('city', 'Lisboa'), porto, { field: 'city', op: 'equals', value: 'Faro' })
    .not((x) => x.greater('temperature', 30).exists('alert'))
    .and((x) => x.exists('humidity'));
  assert.deepEqual(q.toJSON(), {
    mode: 'any',
    where: {
      and: [
        {
          or: [
            { field: 'city', op: 'equals', value: 'Lisboa' },
            { field: 'city', op: 'equals', value: 'Porto' },
            { field: 'city', op: 'equals', value: 'Faro' },
          ],
        },
        {
          not: {
            and: [
              { field: 'temperature', op: 'greater', value: 30 },
              { field: 'alert', op: 'exists' },
            ],
          },
        },
        { and: [{ field: 'humidity', op: 'exists' }] },
      ],
    },
  });
  // An array of alternatives works too.
  assert.deepEqual(query().or([porto, porto]).toJSON().where.or.length, 2);
});

test('select mode filters an array and keeps the path', () => {
  const q = query().select('readings').greater('value', 20).equals('unit', 'C');
  assert.deepEqual(q.toJSON(), {
    mode: 'select',
    path: 'readings',
    where: {
      and: [
        { field: 'value', op: 'greater', value: 20 },
        { field: 'unit', op: 'equals', value: 'C' },
      ],
    },
  });
  assert.deepEqual(q.any().toJSON().mode, 'any');
  assert.equal(q.any().toJSON().path, undefined);
  rejects(() => query().select(''), 'invalid_query');
  rejects(() => query().or(query().select('r').exists('x')), 'invalid_query', /outer query/);
});

test('builders are immutable, so a base query can be reused', () => {
  const base = query().equals('city', 'Lisboa');
  const cold = base.less('temperature', 10);
  const hot = base.greater('temperature', 30);
  assert.deepEqual(base.toJSON().where, { field: 'city', op: 'equals', value: 'Lisboa' });
  assert.equal(cold.toJSON().where.and[1].op, 'less');
  assert.equal(hot.toJSON().where.and[1].op, 'greater');
  assert.equal(base.size, 1);
  const values = ['a', 'b'];
  const q = query().in('x', values);
  values.push('c');
  assert.deepEqual(q.toJSON().where.value, ['a', 'b'], 'the builder copied the array');
});

test('wrong operands are rejected before sending', () => {
  rejects(() => query().less('a', {}), 'invalid_query', /number or a string/);
  rejects(() => query().less('a', NaN), 'invalid_query');
  rejects(() => query().between('a', 1), 'invalid_query');
  rejects(() => query().in('a', 'x'), 'invalid_query', /array/);
  rejects(() => query().startsWith('a', 3), 'invalid_query', /string/);
  rejects(() => query().type('a', 'integer'), 'invalid_query', /one of/);
  rejects(() => query().equals('a', undefined), 'invalid_query');
  rejects(() => query().equals('a', () => 1), 'invalid_query', /not a JSON value/);
  rejects(() => query().equals(3, 'x'), 'invalid_query', /dot path/);
  rejects(() => query().match('a', /x/g), 'invalid_query', /flag/);
  rejects(() => query().match('a', 'x'.repeat(QUERY_LIMITS.maxRegexBytes + 1)), 'invalid_query', /256 bytes/);
  rejects(() => query().or(), 'invalid_query', /at least one/);
  rejects(() => query().or((x) => x), 'invalid_query', /no condition/);
  rejects(() => query().or(() => 42), 'invalid_query', /must return/);
  rejects(() => query().not(), 'invalid_query');
  rejects(() => query().toJSON(), 'invalid_query', /at least one condition/);
});

test('the limits of docs/query.md are enforced client-side', () => {
  // depth: 15 nested "not" around a leaf is depth 16 (allowed), 16 is too deep
  const nest = (n) => {
    let e = { field: 'a', op: 'exists' };
    for (let i = 0; i < n; i++) {
      e = { not: e };
    }
    return e;
  };
  assert.ok(query().where(nest(QUERY_LIMITS.maxDepth - 1)).toJSON());
  rejects(() => query().where(nest(QUERY_LIMITS.maxDepth)), 'invalid_query', /deeper/);

  // nodes: an "and" of 63 leaves is 64 nodes
  let q = query();
  for (let i = 0; i < QUERY_LIMITS.maxNodes - 1; i++) {
    q = q.exists('f' + i);
  }
  assert.equal(q.toJSON().where.and.length, 63);
  rejects(() => q.exists('one-more').toJSON(), 'invalid_query', /64 nodes/);

  // size
  rejects(() => query().equals('a', 'x'.repeat(QUERY_LIMITS.maxBytes)).toJSON(), 'invalid_query', /4096 bytes/);
});

test('validateQuery() checks raw JSON queries', () => {
  const ok = { mode: 'any', where: { field: 'city', op: 'equals', value: 'Lisboa' } };
  assert.equal(validateQuery(ok), ok);
  assert.ok(validateQuery({ where: { field: 'a', op: 'exists' } }), 'mode defaults to any');
  rejects(() => validateQuery({ mode: 'any' }), 'invalid_query', /where/);
  rejects(() => validateQuery({ mode: 'select', where: ok.where }), 'invalid_query', /path/);
  rejects(() => validateQuery({ mode: 'any', path: 'x', where: ok.where }), 'invalid_query', /select mode/);
  rejects(() => validateQuery({ mode: 'all', where: ok.where }), 'invalid_query', /mode/);
  rejects(() => validateQuery({ where: { field: 'a', op: 'lt', value: 1 } }), 'invalid_query', /unknown operator/);
  rejects(() => validateQuery({ where: { and: [] } }), 'invalid_query', /non-empty/);
  rejects(() => validateQuery({ where: { field: 'a', op: 'exists', value: 1 } }), 'invalid_query', /takes no value/);
  rejects(() => validateQuery({ where: ok.where, extra: 1 }), 'invalid_query', /unknown query key/);
  rejects(() => validateQuery({ where: { field: 'a', op: 'equals', value: 1, foo: 2 } }), 'invalid_query', /unknown key/);
  rejects(() => validateQuery([]), 'invalid_query');
});

test('the namespace exposes the documented API', () => {
  for (const name of ['createClient', 'query', 'validateQuery', 'Client', 'Stream', 'Subscription', 'Query', 'LightStreamError', 'ErrorCode', 'MessageType', 'Permission', 'QUERY_LIMITS', 'version']) {
    assert.ok(name in LightStream, name);
  }
  assert.ok(Object.isFrozen(LightStream));
  const e = new LightStreamError('forbidden', 'no', { owner: 'a' });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'LightStreamError');
  assert.equal(e.owner, 'a');
});

test('createClient() validates its options', () => {
  class FakeSocket {}
  const make = (o) => LightStream.createClient(Object.assign({ WebSocket: FakeSocket }, o));
  rejects(() => make({ appKey: 'bad key', token: 't', url: 'ws://127.0.0.1:1' }), 'invalid_argument', /owner|A-Za-z/);
  rejects(() => make({ appKey: 'svc1', url: 'ws://127.0.0.1:1' }), 'invalid_argument', /token/);
  rejects(() => make({ appKey: 'svc1', token: 't', url: 'ftp://x' }), 'invalid_argument', /URL/);
  rejects(() => make({ appKey: 'svc1', token: 't' }), 'invalid_argument', /url/);
  rejects(() => LightStream.createClient({ appKey: 'svc1', token: 't', url: 'ws://h' }), 'unsupported');
  const c = make({ appKey: 'svc1', token: 't', url: 'http://127.0.0.1:8080' });
  assert.equal(c.url, 'ws://127.0.0.1:8080/lightstream/websocket');
  assert.equal(make({ appKey: 'svc1', token: 't', url: 'https://example.test/' }).url, 'wss://example.test/lightstream/websocket');
  assert.equal(make({ appKey: 'svc1', token: 't', url: 'ws://h:1/custom/ws' }).url, 'ws://h:1/custom/ws');
  assert.equal(c.state, 'idle');
  rejects(() => c.on('nope', () => {}), 'invalid_argument', /unknown event/);
  // Before open() nothing may be published or subscribed.
  const s = c.stream('svc1', 'weather');
  assert.equal(String(s), 'svc1:weather');
  assert.equal(s.canRead, false);
  rejects(() => s.publish({ a: 1 }), 'not_connected');
  rejects(() => s.subscribe(() => {}), 'not_connected');
  rejects(() => c.stream('svc1', 'bad/name'), 'invalid_argument');
  rejects(() => c.refresh('x'), 'not_connected');
});
