#!/usr/bin/env node
/*
 * Builds clients/js/public/ from clients/js/src/lightstream.js:
 *   lightstream.js      classic script (global `LightStream`; CommonJS too)
 *   lightstream.mjs     ES module (default export + named exports)
 *   lightstream.min.js  the classic script minified with terser
 *
 *   node clients/js/build.mjs           write the three files
 *   node clients/js/build.mjs --check   exit 1 when a committed file is stale
 *
 * terser comes from tests/browser/node_modules (a devDependency there;
 * `npm ci` in tests/browser installs it, `npm run build` there runs this).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const srcPath = join(here, 'src', 'lightstream.js');
const pub = join(here, 'public');

const source = readFileSync(srcPath, 'utf8');
const version = /const VERSION = '([^']+)'/.exec(source)[1];
const banner =
  `/*! LightStream JavaScript client v${version} | MIT License */\n` +
  '/* Generated from clients/js/src/lightstream.js by clients/js/build.mjs: edit the source. */\n';

const classic =
  banner +
  '(function (root, factory) {\n' +
  "  'use strict';\n" +
  '  var api = factory();\n' +
  "  if (typeof module === 'object' && module && module.exports) {\n" +
  '    module.exports = api;\n' +
  '  } else {\n' +
  '    root.LightStream = api;\n' +
  '  }\n' +
  "}(typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : this, function () {\n" +
  "'use strict';\n\n" +
  source +
  '\nreturn LightStream;\n}));\n';

/*
 * The namespace's keys, read from the classic build itself. Each is a
 * top-level binding of the source of the same name (VERSION for version);
 * the bundle test checks that named and namespace exports agree.
 */
function exportedNames(code) {
  const ctx = { setTimeout, clearTimeout };
  ctx.globalThis = ctx;
  vm.runInNewContext(code, ctx, { filename: 'lightstream.js' });
  return Object.keys(ctx.LightStream);
}

const names = exportedNames(classic);
const esm =
  banner +
  source +
  '\nexport default LightStream;\n' +
  'export {\n' +
  names.map((n) => '  ' + (n === 'version' ? 'VERSION as version' : n) + ',\n').join('') +
  '};\n';

async function minify(code) {
  const require = createRequire(join(root, 'tests', 'browser', 'package.json'));
  let terser;
  try {
    terser = require('terser');
  } catch (e) {
    console.error('build: terser is missing: run `npm ci` in tests/browser');
    process.exit(1);
  }
  const out = await terser.minify(code, {
    ecma: 2020,
    compress: { passes: 2 },
    mangle: true,
    keep_classnames: true,
    format: { comments: /^!/ },
  });
  return out.code + '\n';
}

const outputs = {
  'lightstream.js': classic,
  'lightstream.mjs': esm,
  'lightstream.min.js': await minify(classic),
};

if (process.argv.includes('--check')) {
  const stale = [];
  for (const [name, text] of Object.entries(outputs)) {
    let current = null;
    try {
      current = readFileSync(join(pub, name), 'utf8');
    } catch (e) {
      /* missing counts as stale */
    }
    if (current !== text) {
      stale.push(name);
    }
  }
  if (stale.length) {
    console.error('build: stale in clients/js/public: ' + stale.join(', ') +
      ' (run `npm run build` in tests/browser and commit)');
    process.exit(1);
  }
  console.log('build: clients/js/public is up to date');
} else {
  for (const [name, text] of Object.entries(outputs)) {
    writeFileSync(join(pub, name), text);
    console.log('build: wrote clients/js/public/' + name + ' (' + Buffer.byteLength(text) + ' bytes)');
  }
}
