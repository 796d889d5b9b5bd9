import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { jwtAuthorizer } from '../../src/push/push-jwt';
import { PushServer } from '../../src/push/push-server';
import type { PushRig } from './push-harness';
import { startRig } from './push-harness';

/**
 * The browser test: headless Chromium (Debian's `chromium` package, driven by playwright-core;
 * no browser is downloaded) loads the client module from the push server and receives messages.
 * On CI (`CI=true`) a missing Chromium fails the test; elsewhere it is skipped with the reason.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
const onCi = process.env.CI === 'true';
if (!present && !onCi) {
  console.warn(
    `push-browser.test.ts skipped: no Chromium at ${CHROMIUM} (install it: apt-get install -y chromium)`,
  );
}
const maybe = present || onCi ? test : test.skip;

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
function token(topics: string[]): string {
  const head = `${b64({ alg: 'HS256' })}.${b64({ sub: 'page', topics })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>push</title>
<script type="module">
  import { PushClient } from '/push/client.js';
  window.received = [];
  window.errors = [];
  const params = new URLSearchParams(location.search);
  const client = new PushClient('ws://' + location.host + '/push', { token: params.get('token'), reconnectMinMs: 20 });
  client.onError((e) => window.errors.push(e.code));
  client.subscribe('Browser', { tag: 'shown' }, (m) => {
    window.received.push({ msgId: m.msgId, body: typeof m.body === 'string' ? m.body : Array.from(m.body), key: m.keys[0] });
  });
  client.subscribe('Hidden', {}, () => {});
  window.pushClient = client;
  window.ready = true;
</script>`;

let rig: PushRig | undefined;
let browser: Browser | undefined;
let app: http.Server | undefined;
let push: PushServer | undefined;

afterEach(async () => {
  await browser?.close();
  await push?.close();
  if (app) await new Promise<void>((resolve) => app!.close(() => resolve()));
  await rig?.close();
});

maybe(
  'headless Chromium loads the client module from the server and receives pushed messages',
  async () => {
    if (!present) {
      throw new Error(`no Chromium at ${CHROMIUM}: on CI install it first (apt-get install -y chromium)`);
    }
    rig = await startRig({
      topics: [
        { topic: 'Browser', queueCount: 2 },
        { topic: 'Hidden', queueCount: 1 },
      ],
    });
    // the application's own HTTP server serves the page; the push server is attached to it
    app = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    });
    push = new PushServer({ transport: rig.transport, ...jwtAuthorizer({ key: SECRET }) }).attach(app);
    await new Promise<void>((resolve) => app!.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-gpu',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${origin}/?token=${token(['Browser'])}`);
    await page.waitForFunction(() => (globalThis as unknown as { ready?: boolean }).ready === true);
    await page.waitForFunction(() => (globalThis as unknown as { errors: string[] }).errors.length === 1);
    expect(await page.evaluate(() => (globalThis as unknown as { errors: string[] }).errors)).toEqual([
      'permission_denied',
    ]);
    const deadline = Date.now() + 10_000;
    while (push.metrics().subscriptions < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));

    const sent: string[] = [];
    for (let i = 0; i < 50; i++) {
      sent.push(await rig.send({ topic: 'Browser', tag: 'shown', keys: [`k${i}`], body: `hello ${i}` }));
      await rig.send({ topic: 'Browser', tag: 'hidden', body: 'filtered out' });
    }
    sent.push(await rig.send({ topic: 'Browser', tag: 'shown', body: Buffer.from([0xff, 1, 2]) }));
    await page.waitForFunction(
      () => (globalThis as unknown as { received: unknown[] }).received.length >= 51,
    );
    const received = await page.evaluate(
      () =>
        (globalThis as unknown as { received: Array<{ msgId: string; body: unknown; key?: string }> })
          .received,
    );
    expect(received.map((m) => m.msgId).sort()).toEqual([...sent].sort());
    expect(received.find((m) => m.key === 'k7')?.body).toBe('hello 7');
    expect(received.find((m) => Array.isArray(m.body))?.body).toEqual([255, 1, 2]);
    expect(pageErrors).toEqual([]);
    expect(push.metrics().connections).toBe(1);
    await page.evaluate(() =>
      (globalThis as unknown as { pushClient: { close(): void } }).pushClient.close(),
    );
  },
  60_000,
);
