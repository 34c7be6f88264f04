// The JavaScript client's copies of the contract agree with its one home,
// common/ls_proto.c: tests/unit/proto_contract_dump prints the C module's
// error table, close codes, message types and its verdicts on the shared
// cases of tests/fixtures/contract_cases.json; the client must give the
// same answers on the same cases.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { sourceRoot, test } from './harness.mjs';
import LightStream, { contract, ErrorCode, MessageType, Permission } from '../../clients/js/public/lightstream.mjs';

const casesPath = join(sourceRoot(), 'tests', 'fixtures', 'contract_cases.json');

function cModule() {
  const build = process.env.LIGHTSTREAM_BUILD_ROOT || join(sourceRoot(), 'build');
  const bin = join(build, 'tests', 'unit', 'proto_contract_dump');
  assert.ok(existsSync(bin), bin + ' is built by meson (tests/unit/meson.build)');
  return JSON.parse(execFileSync(bin, [casesPath], { encoding: 'utf8' }));
}

const c = cModule();
const cases = JSON.parse(readFileSync(casesPath, 'utf8'));

test('every server error code is an ErrorCode of the client', () => {
  const values = new Set(Object.values(ErrorCode));
  for (const row of c.errors) {
    assert.ok(values.has(row.code), 'ErrorCode lacks ' + row.code);
  }
});

test('close codes mean what the table says', () => {
  const byClose = new Map(c.errors.filter((r) => r.close).map((r) => [r.close, r.code]));
  for (const [close, code] of byClose) {
    assert.equal(contract.closeCodes[close], code, 'close ' + close);
  }
  // Codes the client knows beyond the table's rows are close codes the
  // server sends without a row (going away, auth timeout) or the
  // browser's own 1006 (no close frame at all).
  const known = new Set(c.closeCodes);
  for (const close of Object.keys(contract.closeCodes).map(Number)) {
    assert.ok(byClose.has(close) || known.has(close) || close === 1006,
      'the client maps close ' + close + ', which the server never sends');
  }
});

test('HTTP statuses map back to a code of that status', () => {
  for (const [status, code] of Object.entries(contract.httpStatuses)) {
    const row = c.errors.find((r) => r.code === code);
    assert.ok(row, 'HTTP ' + status + ' maps to ' + code + ', not a server code');
    assert.equal(row.http, Number(status), code + ' is HTTP ' + row.http + ', not ' + status);
  }
  for (const row of c.errors.filter((r) => r.http)) {
    assert.ok(contract.httpStatuses[row.http], 'the client does not know HTTP ' + row.http);
  }
});

test('message types and permission bits are the same numbers', () => {
  const norm = (k) => k.replace(/_/g, '');
  const js = Object.fromEntries(Object.entries(MessageType).map(([k, v]) => [norm(k), v]));
  const cs = Object.fromEntries(Object.entries(c.messageTypes).map(([k, v]) => [norm(k), v]));
  assert.deepEqual(js, cs);
  assert.deepEqual({ write: Permission.WRITE, read: Permission.READ }, c.permissionBits);
});

test('identifier grammar: same verdicts on every shared case', () => {
  assert.equal(c.identifiers.length, cases.identifiers.length);
  for (const v of c.identifiers) {
    assert.equal(contract.validAppKey(v.s), v.appKey, 'appKey ' + JSON.stringify(v.s));
    assert.equal(contract.validStream(v.s), v.stream, 'stream ' + JSON.stringify(v.s));
  }
});

test('permission check: same verdicts on every shared case', () => {
  assert.equal(c.permissions.length, cases.permissions.length);
  cases.permissions.forEach((k, i) => {
    assert.equal(contract.permits(k.perms, k.owner, k.stream, k.want), c.permissions[i],
      'case ' + i + ': ' + JSON.stringify(k));
  });
  // The shared cases cover both verdicts (a test that cannot fail is none).
  assert.ok(c.permissions.includes(true) && c.permissions.includes(false));
});

test('the namespace exports the same contract object', () => {
  assert.equal(LightStream.contract, contract);
});
