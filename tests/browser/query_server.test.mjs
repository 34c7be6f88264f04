// Queries built with the JavaScript builder are accepted and evaluated by
// the server's own query engine (`lightstream query`), with the results a
// subscriber would see.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { query } from '../../clients/js/public/lightstream.mjs';
import { lightstreamBin, test } from './harness.mjs';

const bin = lightstreamBin();

function evaluate(q, message) {
  const out = execFileSync(bin, ['query', '--query', JSON.stringify(q), '--message', JSON.stringify(message)], {
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

const lisboaCold = { city: 'Lisboa', temperature: 12, readings: [{ sensor: 'a', value: 5 }, { sensor: 'b', value: 25 }] };
const lisboaWarm = { city: 'Lisboa', temperature: 21, readings: [{ sensor: 'a', value: 1 }] };
const porto = { city: 'Porto', temperature: 9, readings: [] };

test('the documented example matches only Lisbon below 15 °C', () => {
  const q = query().equals('city', 'Lisboa').less('temperature', 15);
  assert.deepEqual(evaluate(q, lisboaCold), { match: true, data: lisboaCold });
  assert.deepEqual(evaluate(q, lisboaWarm), { match: false, data: null });
  assert.deepEqual(evaluate(q, porto), { match: false, data: null });
});

test('select mode delivers only the matching readings', () => {
  const q = query().select('readings').greater('value', 20);
  assert.deepEqual(evaluate(q, lisboaCold).data, { city: 'Lisboa', temperature: 12, readings: [{ sensor: 'b', value: 25 }] });
  assert.equal(evaluate(q, lisboaWarm).match, false);
});

test('every operator and combinator is accepted by the server', () => {
  const m = { city: 'Lisboa', temperature: 12, tags: ['coast', 'capital'], empty: '', nested: { a: [1, 2] } };
  const cases = [
    [query().equals('city', 'lisboa').ignoreCase(), true],
    [query().notEquals('city', 'Porto'), true],
    [query().less('temperature', 12), false],
    [query().lessEquals('temperature', 12), true],
    [query().greater('temperature', 11.5), true],
    [query().greaterEquals('temperature', 13), false],
    [query().between('temperature', 10, 12), true],
    [query().in('city', ['LISBOA', 'Faro']).ignoreCase(), true],
    [query().notIn('city', ['Lisboa']), false],
    [query().contains('tags', 'coast'), true],
    [query().contains('city', 'sbo'), true],
    [query().startsWith('city', 'Lis'), true],
    [query().endsWith('city', 'OA').ignoreCase(), true],
    [query().match('city', /^l.*a$/i), true],
    [query().exists('nested.a.1'), true],
    [query().notExists('missing'), true],
    [query().isEmpty('empty'), true],
    [query().type('tags', 'array'), true],
    [query().or((q) => q.equals('city', 'Porto'), (q) => q.less('temperature', 13)), true],
    [query().not((q) => q.equals('city', 'Lisboa')), false],
    [query().and((q) => q.exists('city'), (q) => q.type('temperature', 'number')), true],
  ];
  for (const [q, expected] of cases) {
    assert.equal(evaluate(q, m).match, expected, JSON.stringify(q));
  }
});
