'use strict';
// `node server.js` started for real, as production would, against its embedded broker and, when
// ROCKETNEST_BROKER names one, against a standalone `rocketnest broker`; stopped with SIGTERM.
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { it } = require('node:test');

const modes = [['its embedded broker', {}]];
if (process.env.ROCKETNEST_BROKER)
  modes.push(['the standalone broker', { ROCKETNEST_BROKER: process.env.ROCKETNEST_BROKER }]);

function start(env) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'server.js')], {
    env: { ...process.env, ROCKETNEST_BROKER: '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk;
      const match = /listening on (\S+)/.exec(output);
      if (match) resolve(match[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(({ code }) =>
      reject(new Error(`server.js exited (${code}) before listening:\n${output}`)),
    );
  });
  return { child, listening, exited, output: () => output };
}

async function until(what, condition, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

for (const [name, env] of modes) {
  it(`node server.js against ${name}: an order is published, charged, and SIGTERM stops the process`, async () => {
    const server = start(env);
    try {
      const url = await server.listening;
      const id = `o-${process.pid}-${Date.now()}`;
      const response = await fetch(`${url}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id, amount: 5 }),
      });
      assert.equal(response.status, 201);
      await until(`order ${id} is charged`, async () =>
        (await (await fetch(`${url}/charges`)).json()).includes(id),
      );
    } finally {
      server.child.kill('SIGTERM');
    }
    const { code, signal } = await server.exited;
    assert.equal(signal, null, server.output());
    assert.equal(code, 0, server.output());
    assert.match(server.output(), /stopped/);
  });
}
