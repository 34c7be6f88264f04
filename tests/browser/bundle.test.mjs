// The committed files of clients/js/public are built from the source, and
// the classic, minified and ES-module builds export the same API, which
// lightstream.d.ts declares.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';

import { sourceRoot, test } from './harness.mjs';

const pub = join(sourceRoot(), 'clients', 'js', 'public');

/* Load a classic script the way a page does: no module, a global object. */
function loadClassic(file) {
  const ctx = { setTimeout, clearTimeout };
  ctx.globalThis = ctx;
  vm.runInNewContext(readFileSync(join(pub, file), 'utf8'), ctx, { filename: file });
  assert.ok(ctx.LightStream, file + ' defines the global LightStream');
  return ctx.LightStream;
}

/* The shape of an API: names, kinds and method names of its classes. */
function shape(api) {
  const out = {};
  for (const key of Object.keys(api).sort()) {
    const v = api[key];
    if (typeof v === 'function' && /^class /.test(Function.prototype.toString.call(v))) {
      const proto = Object.getOwnPropertyNames(v.prototype).filter((n) => !n.startsWith('_')).sort();
      out[key] = 'class ' + v.name + ' {' + proto.join(',') + '}';
    } else if (typeof v === 'function') {
      out[key] = 'function/' + v.length;
    } else if (v && typeof v === 'object') {
      out[key] = JSON.stringify(v);
    } else {
      out[key] = typeof v + ':' + v;
    }
  }
  return out;
}

test('public/ is up to date with src/lightstream.js', () => {
  execFileSync(process.execPath, [join(sourceRoot(), 'clients', 'js', 'build.mjs'), '--check'], { stdio: 'pipe' });
});

test('lightstream.min.js exports the same API as lightstream.js', () => {
  const full = loadClassic('lightstream.js');
  const min = loadClassic('lightstream.min.js');
  assert.deepEqual(shape(min), shape(full));
  assert.ok(readFileSync(join(pub, 'lightstream.min.js')).length < readFileSync(join(pub, 'lightstream.js')).length / 1.5,
    'the minified build is markedly smaller');
  // and it works: a query built by each is the same JSON
  const build = (L) => JSON.stringify(L.query().equals('city', 'Lisboa').less('temperature', 15).select('readings'));
  assert.equal(build(min), build(full));
  assert.throws(() => min.query().less('x', {}), (e) => e instanceof min.LightStreamError && e.code === 'invalid_query');
});

test('lightstream.mjs exports the same API, by name and as default', async () => {
  const full = loadClassic('lightstream.js');
  const mod = await import(join(pub, 'lightstream.mjs'));
  assert.deepEqual(shape(mod.default), shape(full));
  for (const key of Object.keys(mod.default)) {
    assert.equal(mod[key], mod.default[key], 'named export ' + key);
  }
  assert.deepEqual(Object.keys(mod).filter((k) => k !== 'default').sort(), Object.keys(mod.default).sort());
});

test('lightstream.d.ts declares every export and every public method', () => {
  const dts = readFileSync(join(pub, 'lightstream.d.ts'), 'utf8');
  const full = loadClassic('lightstream.js');
  for (const key of Object.keys(full)) {
    assert.match(dts, new RegExp('export (declare )?(const|function|class|interface|type|enum) ' + key + '\\b'), 'declares ' + key);
  }
  for (const cls of ['Client', 'Stream', 'Subscription', 'Query', 'LightStreamError']) {
    const body = dts.slice(dts.indexOf('class ' + cls + ' '));
    const end = body.indexOf('\n}');
    const decl = body.slice(0, end);
    for (const name of Object.getOwnPropertyNames(full[cls].prototype)) {
      if (name === 'constructor' || name.startsWith('_')) {
        continue;
      }
      assert.match(decl, new RegExp('\\b' + name + '\\b'), cls + '.' + name + ' is declared');
    }
  }
});

test('the client packs as an npm package that ESM and CommonJS users can import', () => {
  const tmp = mkdtempSync(join(process.env.TMPDIR || '/tmp', 'ls-npm-'));
  const pkgDir = join(sourceRoot(), 'clients', 'js');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const version = /const VERSION = '([^']+)'/.exec(readFileSync(join(pkgDir, 'src', 'lightstream.js'), 'utf8'))[1];
  assert.equal(pkg.version, version, 'package.json version is the client VERSION');
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', tmp, pkgDir],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  const files = packed[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, ['README.md', 'package.json', 'public/lightstream.d.ts', 'public/lightstream.js',
    'public/lightstream.min.js', 'public/lightstream.mjs']);
  // Install the tarball into a project with no network access needed.
  const app = join(tmp, 'app');
  execFileSync('mkdir', ['-p', join(app, 'node_modules')]);
  execFileSync('tar', ['-xzf', join(tmp, packed[0].filename), '-C', join(app, 'node_modules')]);
  execFileSync('mv', [join(app, 'node_modules', 'package'), join(app, 'node_modules', 'lightstream-client')]);
  writeFileSync(join(app, 'esm.mjs'),
    "import LightStream, { createClient } from 'lightstream-client';\n" +
    "console.log(typeof LightStream.createClient, typeof createClient, LightStream.version);\n");
  writeFileSync(join(app, 'cjs.cjs'),
    "const LightStream = require('lightstream-client');\n" +
    "console.log(typeof LightStream.createClient, typeof LightStream.createClient, LightStream.version);\n");
  const esm = execFileSync(process.execPath, [join(app, 'esm.mjs')], { encoding: 'utf8', cwd: app }).trim();
  const cjs = execFileSync(process.execPath, [join(app, 'cjs.cjs')], { encoding: 'utf8', cwd: app }).trim();
  assert.equal(esm, 'function function ' + version);
  assert.equal(cjs, 'function function ' + version);
  assert.ok(readdirSync(join(app, 'node_modules', 'lightstream-client', 'public')).includes('lightstream.d.ts'));
});
