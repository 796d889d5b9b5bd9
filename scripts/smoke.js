#!/usr/bin/env node
// Consumer smoke tests: the packages as a user gets them. Builds and packs every package
// (scripts/pack.js), copies each app of examples/ into a fresh temp folder outside the workspace,
// installs the tarballs there with npm, starts a standalone `rocketnest broker` from that app's
// installed CLI, and runs the app's own build and tests (which use the standalone broker through
// ROCKETNEST_BROKER, and an embedded one). A few apps are installed a second time with another
// package manager, from the same tarballs (VARIANTS: pnpm, Yarn classic, Yarn Berry), and tested
// the same way. Prints a pass/fail summary; exits non-zero on failure.
//
//   node scripts/smoke.js [--tarballs <dir>] [--only <name>[,<name>]] [--keep]
//
// --only takes example names (`nest-app`, every install of it) or runs (`nest-app+pnpm`);
// --tarballs reuses packed tarballs instead of building; --keep leaves the temp folder for a look.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { packAll, ROOT } = require('./pack');

const EXAMPLES_DIR = path.join(ROOT, 'examples');
/** Topics the examples use, created by the standalone broker at start. */
const BROKER_TOPICS = 'orders,RocketNestReply';
/** Per-step limits: an npm install on a cold cache, a test run, a broker start and stop. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const TEST_TIMEOUT_MS = 10 * 60_000;
const BROKER_START_TIMEOUT_MS = 30_000;
const BROKER_STOP_TIMEOUT_MS = 15_000;

/**
 * Package managers an app is installed with. Each is fetched from the npm registry by `npx` and
 * told to install from the npm registry only. A tarball's own `@rocketnest/*` dependency (e.g.
 * nest-transport's `@rocketnest/core-broker@^0.1.0`) is not in any registry: npm reuses the app's
 * top-level `file:` install for it; pnpm and Yarn are pointed at the tarball by `overrides` /
 * `resolutions` (see docs/own-app.md).
 */
const MANAGERS = {
  npm: {
    command: [process.platform === 'win32' ? 'npm.cmd' : 'npm'],
    install: ['install', '--no-audit', '--no-fund', '--loglevel=error'],
  },
  pnpm: {
    command: ['npx', '-y', 'pnpm@12.4.2'],
    // no lockfile: under CI pnpm would insist on a frozen one
    install: ['install', '--no-frozen-lockfile', '--reporter=append-only'],
    prepare: (appDir, overrides) => {
      // pnpm 12 reads overrides and build permissions from pnpm-workspace.yaml (in a lone app too),
      // and fails the install on a dependency's build script nobody decided on. Neither here needs
      // its script: @parcel/watcher (from jest-haste-map) ships prebuilt binaries as optional
      // packages and builds only as a fallback; protobufjs 7's postinstall only checks versions.
      const lines = ['overrides:'];
      for (const [name, spec] of Object.entries(overrides)) lines.push(`  '${name}': '${spec}'`);
      lines.push('allowBuilds:', "  '@parcel/watcher': false", '  protobufjs: false');
      fs.writeFileSync(path.join(appDir, 'pnpm-workspace.yaml'), `${lines.join('\n')}\n`);
    },
  },
  yarn: {
    command: ['npx', '-y', 'yarn@1.22.22'],
    install: ['install', '--non-interactive', '--no-progress'],
    prepare: (appDir, overrides) => {
      // Yarn classic's default registry is registry.yarnpkg.com: use npm's, as the others do
      fs.writeFileSync(path.join(appDir, '.yarnrc'), 'registry "https://registry.npmjs.org/"\n');
      setManifest(appDir, (m) => (m.resolutions = overrides));
    },
  },
  'yarn-berry': {
    command: ['npx', '-y', '@yarnpkg/cli-dist@4.18.1'],
    // no lockfile: under CI Yarn would insist on an immutable one
    install: ['install', '--no-immutable'],
    prepare: (appDir, overrides) => {
      // node_modules (not Plug'n'Play), npm's registry, no telemetry: nothing fetched from elsewhere
      fs.writeFileSync(
        path.join(appDir, '.yarnrc.yml'),
        'nodeLinker: node-modules\nnpmRegistryServer: "https://registry.npmjs.org"\nenableTelemetry: false\n',
      );
      setManifest(appDir, (m) => (m.resolutions = overrides));
    },
  },
};
/** Apps installed again with another package manager (every example is installed with npm). */
const VARIANTS = [
  { app: 'nest-app', manager: 'pnpm' },
  { app: 'express-app', manager: 'yarn' },
  { app: 'express-app', manager: 'yarn-berry' },
];

const children = new Set();

function log(line) {
  process.stdout.write(`[smoke] ${line}\n`);
}

/** Runs a command to completion, its output appended to logFile; rejects with the output's tail. */
function run(command, args, { cwd, env, logFile, timeoutMs }) {
  return new Promise((resolve, reject) => {
    fs.appendFileSync(logFile, `\n$ ${command} ${args.join(' ')}\n`);
    const out = fs.openSync(logFile, 'a');
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
    children.add(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      fs.closeSync(out);
      if (code === 0) return resolve();
      const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-60).join('\n');
      reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${tail}`));
    });
  });
}

/** Starts `rocketnest broker` from the app's node_modules/.bin; resolves with it and its address. */
function startBroker(appDir, dataDir, logFile) {
  const bin = path.join(
    appDir,
    'node_modules',
    '.bin',
    process.platform === 'win32' ? 'rocketnest.cmd' : 'rocketnest',
  );
  const args = ['broker', '--store-dir', dataDir, '--port', '0', '--topics', BROKER_TOPICS];
  fs.appendFileSync(logFile, `\n$ ${bin} ${args.join(' ')}\n`);
  const child = spawn(bin, args, { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `rocketnest broker did not report an address within ${BROKER_START_TIMEOUT_MS} ms:\n${output}`,
        ),
      );
    }, BROKER_START_TIMEOUT_MS);
    const onData = (chunk) => {
      output += chunk;
      fs.appendFileSync(logFile, chunk);
      const match = /listening on (\S+):(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, address: `${match[1]}:${match[2]}`, output: () => output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      reject(
        new Error(`rocketnest broker exited (${signal ?? `exit ${code}`}) before listening:\n${output}`),
      );
    });
  });
}

/** SIGTERM, then wait for a clean exit (the broker flushes and checkpoints); SIGKILL after a limit. */
function stopBroker(child) {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rocketnest broker did not exit within ${BROKER_STOP_TIMEOUT_MS} ms of SIGTERM`));
    }, BROKER_STOP_TIMEOUT_MS);
    child.removeAllListeners('exit');
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve();
      else reject(new Error(`rocketnest broker exited with ${signal ?? `code ${code}`} after SIGTERM`));
    });
    child.kill('SIGTERM');
  });
}

/** Copies an example without its build output or installed modules. */
function copyApp(from, to) {
  fs.cpSync(from, to, {
    recursive: true,
    filter: (source) =>
      !/[\\/](node_modules|dist|coverage)$/.test(source) && !source.endsWith('.tsbuildinfo'),
  });
}

/** Rewrites the app's package.json with `edit`. */
function setManifest(appDir, edit) {
  const file = path.join(appDir, 'package.json');
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(manifest);
  fs.writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
}

/**
 * Points every @rocketnest/* dependency of the copied app at its packed tarball; returns those
 * `file:` specs by name (the overrides pnpm and Yarn need for the tarballs' own dependencies).
 */
function useTarballs(appDir, tarballs) {
  const specs = {};
  setManifest(appDir, (manifest) => {
    for (const section of ['dependencies', 'devDependencies']) {
      for (const name of Object.keys(manifest[section] ?? {})) {
        if (!name.startsWith('@rocketnest/')) continue;
        if (!tarballs[name]) throw new Error(`${manifest.name}: no tarball for ${name}`);
        manifest[section][name] = specs[name] = `file:${tarballs[name]}`;
      }
    }
  });
  // a tarball's dependency on a package the app does not list (testing → core-broker) needs it too
  if (Object.keys(specs).length > 0 && tarballs['@rocketnest/core-broker'])
    specs['@rocketnest/core-broker'] = `file:${tarballs['@rocketnest/core-broker']}`;
  return specs;
}

async function smokeApp({ name, app, manager }, { tarballs, workDir }) {
  const appDir = path.join(workDir, 'apps', name);
  const logFile = path.join(workDir, `${name}.log`);
  const pm = MANAGERS[manager];
  const [pmCommand, ...pmArgs] = pm.command;
  const runPm = (args, options) => run(pmCommand, [...pmArgs, ...args], { cwd: appDir, logFile, ...options });
  const steps = [];
  const step = async (label, fn) => {
    const started = Date.now();
    await fn();
    steps.push(`${label} ${((Date.now() - started) / 1000).toFixed(0)}s`);
  };
  copyApp(path.join(EXAMPLES_DIR, app), appDir);
  const overrides = useTarballs(appDir, tarballs);
  pm.prepare?.(appDir, overrides);
  await step('install', () => runPm(pm.install, { timeoutMs: INSTALL_TIMEOUT_MS }));
  const manifest = JSON.parse(fs.readFileSync(path.join(appDir, 'package.json'), 'utf8'));
  // another manager's install changes the node_modules layout, which typecheck covers; its build
  // would emit the same files as npm's run (skipped to keep the smoke short)
  const scripts = manager === 'npm' ? ['typecheck', 'build'] : ['typecheck'];
  for (const script of scripts.filter((name) => manifest.scripts?.[name]))
    await step(script, () => runPm(['run', script], { timeoutMs: TEST_TIMEOUT_MS }));
  const broker = await startBroker(appDir, path.join(workDir, `${name}-broker-data`), logFile);
  try {
    const env = { ROCKETNEST_BROKER: broker.address };
    await step('test', () => runPm(['run', 'test'], { timeoutMs: TEST_TIMEOUT_MS, env }));
    // `nest new` keeps end-to-end tests apart, under `test:e2e`
    if (manifest.scripts?.['test:e2e'])
      await step('test:e2e', () => runPm(['run', 'test:e2e'], { timeoutMs: TEST_TIMEOUT_MS, env }));
  } finally {
    await step('broker stop', () => stopBroker(broker.child));
  }
  return steps.join(', ');
}

async function main() {
  const args = process.argv.slice(2);
  const flag = (name) => {
    const index = args.indexOf(name);
    return index >= 0 ? args[index + 1] : undefined;
  };
  const keep = args.includes('--keep');
  const only = flag('--only')?.split(',');
  const examples = fs
    .readdirSync(EXAMPLES_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
  for (const { app } of VARIANTS)
    if (!examples.includes(app)) throw new Error(`VARIANTS names ${app}, which is not in ${EXAMPLES_DIR}`);
  const runs = [
    ...examples.map((app) => ({ name: app, app, manager: 'npm' })),
    ...VARIANTS.map(({ app, manager }) => ({ name: `${app}+${manager}`, app, manager })),
  ].filter((r) => !only || only.includes(r.name) || only.includes(r.app));
  if (runs.length === 0) throw new Error(`nothing to run: no example or run named ${only}`);

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-smoke-'));
  const cleanup = () => {
    for (const child of children) child.kill('SIGKILL');
    if (!keep) fs.rmSync(workDir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'])
    process.once(signal, () => {
      cleanup();
      process.exit(130);
    });

  const results = [];
  try {
    const tarballDir = flag('--tarballs');
    let tarballs;
    if (tarballDir) {
      tarballs = {};
      for (const file of fs.readdirSync(tarballDir).filter((f) => /^rocketnest-.*\.tgz$/.test(f))) {
        const name = file.replace(/^rocketnest-(.*)-\d+\.\d+\.\d+.*\.tgz$/, '@rocketnest/$1');
        tarballs[name] = path.resolve(tarballDir, file);
      }
    } else {
      log('building and packing the packages');
      tarballs = packAll({ out: path.join(workDir, 'tarballs') });
    }
    log(`working in ${workDir}`);
    for (const r of runs) {
      const { name } = r;
      log(`${name}: install (${r.manager}), build, test`);
      const started = Date.now();
      try {
        const detail = await smokeApp(r, { tarballs, workDir });
        results.push({ name, ok: true, detail, seconds: (Date.now() - started) / 1000 });
      } catch (error) {
        results.push({ name, ok: false, detail: error.message, seconds: (Date.now() - started) / 1000 });
      }
    }
  } finally {
    cleanup();
  }

  log('summary');
  for (const r of results) {
    log(`  ${r.ok ? 'PASS' : 'FAIL'}  ${r.name} (${r.seconds.toFixed(0)}s)${r.ok ? `: ${r.detail}` : ''}`);
  }
  for (const r of results.filter((x) => !x.ok)) log(`\n--- ${r.name} failed ---\n${r.detail}`);
  const failed = results.filter((r) => !r.ok).length;
  log(
    failed === 0
      ? `all ${results.length} consumer apps passed`
      : `${failed} of ${results.length} consumer apps failed`,
  );
  if (failed > 0 || results.length < runs.length) process.exitCode = 1;
}

main().catch((error) => {
  console.error(`[smoke] ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
