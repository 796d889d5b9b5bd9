#!/usr/bin/env node
// What must hold before a release (nothing is published from here): builds and packs every
// package (scripts/pack.js, with pnpm pack), lints each tarball with publint and
// @arethetypeswrong/cli (typings under node10, node16 CJS and ESM, bundler), then runs the
// consumer smoke tests (scripts/smoke.js) on the same tarballs. Exits non-zero on any problem.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { packAll, ROOT } = require('./pack');

const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);

function check(label, command, args) {
  process.stdout.write(`\n[release:check] ${label}\n`);
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: ROOT });
  return result.status === 0;
}

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-release-'));
const failures = [];
try {
  const tarballs = packAll({ out });
  for (const [name, tarball] of Object.entries(tarballs)) {
    if (!check(`publint ${name}`, bin('publint'), ['run', tarball, '--strict']))
      failures.push(`publint ${name}`);
    if (!check(`attw ${name}`, bin('attw'), [tarball, '--format', 'table-flipped']))
      failures.push(`attw ${name}`);
  }
  if (!check('consumer smoke tests', process.execPath, [path.join(__dirname, 'smoke.js'), '--tarballs', out]))
    failures.push('consumer smoke tests');
} catch (error) {
  failures.push(error.message);
} finally {
  fs.rmSync(out, { recursive: true, force: true });
}
if (failures.length > 0) {
  console.error(`\n[release:check] FAILED: ${failures.join('; ')}`);
  process.exit(1);
}
console.log('\n[release:check] clean: every tarball passes publint and attw, and the consumer apps pass');
