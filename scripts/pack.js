#!/usr/bin/env node
// Builds every publishable package from clean and packs it with `pnpm pack`, which rewrites
// `workspace:^` dependencies into real version ranges (`npm pack` would leave `workspace:` in the
// tarball, which npm refuses to install: EUNSUPPORTEDPROTOCOL). Nothing is published.
//
//   node scripts/pack.js [--out <dir>] [--no-build]
//
// Prints one tarball path per line on stdout; exits non-zero if a tarball still holds `workspace:`.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
/** The publishable packages, in dependency order. */
const PACKAGES = ['core-broker', 'nest-transport', 'express', 'testing'];
const PNPM = ['-y', 'pnpm@12.4.2'];

function run(args, cwd) {
  return execFileSync('npx', [...PNPM, ...args], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Builds (unless build is false) and packs; returns the tarballs' absolute paths by package name. */
function packAll({ out, build = true }) {
  fs.mkdirSync(out, { recursive: true });
  if (build) {
    for (const name of PACKAGES)
      fs.rmSync(path.join(ROOT, 'packages', name, 'dist'), { recursive: true, force: true });
    for (const name of PACKAGES) {
      process.stderr.write(`building @rocketnest/${name}\n`);
      run(['run', 'build'], path.join(ROOT, 'packages', name));
    }
  }
  const tarballs = {};
  for (const name of PACKAGES) {
    const dir = path.join(ROOT, 'packages', name);
    const before = new Set(fs.readdirSync(out));
    run(['pack', '--pack-destination', out], dir);
    const made = fs.readdirSync(out).filter((f) => f.endsWith('.tgz') && !before.has(f));
    const { version } = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const file = made[0] ?? `rocketnest-${name}-${version}.tgz`;
    const tarball = path.join(out, file);
    if (!fs.existsSync(tarball))
      throw new Error(`pnpm pack wrote no tarball for @rocketnest/${name} in ${out}`);
    const manifest = execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' });
    if (manifest.includes('workspace:'))
      throw new Error(`${file}: package.json still has a workspace: range; pack with pnpm, not npm`);
    tarballs[`@rocketnest/${name}`] = tarball;
  }
  return tarballs;
}

module.exports = { packAll, PACKAGES, ROOT };

if (require.main === module) {
  const args = process.argv.slice(2);
  const outIndex = args.indexOf('--out');
  const out = path.resolve(
    outIndex >= 0 ? args[outIndex + 1] : path.join(os.tmpdir(), 'rocketnest-tarballs'),
  );
  try {
    const tarballs = packAll({ out, build: !args.includes('--no-build') });
    for (const tarball of Object.values(tarballs)) console.log(tarball);
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}
