/**
 * Issue 20 #4: the dashboard of `rocketnest broker --http-port`, in headless Chromium (Debian's
 * package, driven by playwright-core) against a real broker process carrying real traffic: the
 * group's lag rises on the page while its consumer is paused and falls when it resumes; a message
 * is found by id; a dead letter is resent from the browser. The screenshot is kept as
 * docs/images/dashboard.png.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Producer } from '../../src/client/producer';
import { ConsumeResult, PushConsumer } from '../../src/client/push-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { startServerProcess, type ServerProcess } from '../support/broker-process';
import { tempDir } from '../support/temp-dir';

/** The page's DOM, as the functions run in the browser use it (this file compiles without lib.dom). */
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelector(selector: string): { textContent: string | null } | null;
};

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.join(__dirname, '../../../../docs/images/dashboard.png');
const present = existsSync(CHROMIUM);
if (!present) console.warn(`dashboard-browser.test.ts: skipped, no Chromium at ${CHROMIUM}`);

/** The lag the page shows for `group`, or undefined while it shows none. */
async function shownLag(page: Page, group: string): Promise<number | undefined> {
  const text = await page
    .locator(`#groups td.lag[data-group="${group}"]`)
    .textContent({ timeout: 1000 })
    .catch(() => null);
  return text === null ? undefined : Number(text);
}

async function waitForShownLag(page: Page, group: string, lag: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if ((await shownLag(page, group)) === lag) return;
    if (Date.now() > deadline)
      throw new Error(`the page shows lag ${await shownLag(page, group)} for ${group}, not ${lag}`);
    await page.waitForTimeout(250);
  }
}

(present ? describe : describe.skip)('/dashboard in headless Chromium', () => {
  let t: { dir: string; cleanup(): void };
  let broker: ServerProcess | undefined;
  let browser: Browser | undefined;

  beforeAll(() => (t = tempDir()));
  afterAll(async () => {
    await browser?.close();
    if (broker) expect(await broker.stop()).toBe(0);
    t.cleanup();
  });

  test('lag rises while the consumer is paused and falls when it resumes; lookup and dead-letter resend', async () => {
    broker = await startServerProcess([
      'broker',
      '--store-dir',
      path.join(t.dir, 'data'),
      '--port',
      '0',
      '--http-port',
      '0',
      '--topics',
      'orders:2,payments:1',
    ]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--no-first-run'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`http://127.0.0.1:${broker.httpPort}/dashboard`);
    await page.waitForFunction(() => Number(document.body.dataset.refreshed ?? 0) >= 1);
    expect(await page.locator('#broker').textContent()).toMatch(/^broker-a @ 127\.0\.0\.1:\d+$/);

    const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${broker.port}` } });
    const producer = new Producer({ group: 'dash-producer', transport });
    // the consumer's handler waits on a gate: closed = paused
    let open = true;
    let release: () => void = () => undefined;
    let gate = Promise.resolve();
    let consumed = 0;
    const consumer = new PushConsumer({
      group: 'dash-group',
      transport,
      consumeFromWhere: 'FIRST_OFFSET',
      persistOffsetIntervalMs: 200,
      suspendTimeoutMs: 200,
    });
    consumer.subscribe('orders', '*');
    consumer.registerMessageListener(async (messages) => {
      if (!open) await gate;
      consumed += messages.length;
      return ConsumeResult.CONSUME_SUCCESS;
    });
    await producer.start();
    await consumer.start();
    try {
      const first = [];
      for (let i = 0; i < 10; i++)
        first.push(await producer.send({ topic: 'orders', body: `{"order":${i}}`, keys: [`order-${i}`] }));
      await waitForShownLag(page, 'dash-group', 0);
      expect(consumed).toBe(10);

      // paused: 30 more arrive, the lag on the page rises to 30
      open = false;
      gate = new Promise<void>((resolve) => (release = resolve));
      for (let i = 10; i < 40; i++) await producer.send({ topic: 'orders', body: `{"order":${i}}` });
      await waitForShownLag(page, 'dash-group', 30);
      await page.waitForSelector('#lag-chart polyline.lag-line[data-group="dash-group"]', {
        state: 'attached',
      });
      expect(await page.locator('#topics td.stored').first().textContent()).toBe('40');

      // resumed: the lag falls to 0
      open = true;
      release();
      await waitForShownLag(page, 'dash-group', 0);
      expect(consumed).toBe(40);
      // the chart kept the rise: its peak over the window is the 30 messages of the pause
      expect(await page.locator('#lag-chart svg').getAttribute('data-peak')).toBe('30');

      // lookup by message id
      await page.fill('#lookup-id', first[3]!.msgId);
      await page.click('#lookup button');
      await page.waitForFunction(() =>
        document.querySelector('#lookup-result')!.textContent!.includes('order'),
      );
      const found = JSON.parse((await page.locator('#lookup-result').textContent())!) as Array<{
        msgId: string;
        body: string;
        keys: string[];
      }>;
      expect(found).toEqual([
        expect.objectContaining({ msgId: first[3]!.msgId, body: '{"order":3}', keys: ['order-3'] }),
      ]);

      // a dead letter, browsed and resent from the page
      await transport.sendBack('broker-a', {
        consumerGroup: 'dash-group',
        msgId: first[5]!.msgId,
        maxReconsumeTimes: 0,
      });
      await page.fill('#dlq-group', 'dash-group');
      await page.click('#dlq button');
      await page.waitForSelector('#dlq-list button.resend');
      expect(await page.locator('#dlq-list td.msgid').count()).toBe(1);
      expect(await page.locator('#dlq-list tbody tr').first().textContent()).toContain('{"order":5}');
      await page.click('#dlq-list button.resend');
      await page.waitForFunction(() =>
        document.querySelector('#dlq-status')!.textContent!.startsWith('resent as '),
      );
      expect(await page.locator('#dlq-status').textContent()).toMatch(/ to orders$/);
      // the resent copy is consumed again by the group
      const deadline = Date.now() + 30_000;
      while (consumed < 41 && Date.now() < deadline) await page.waitForTimeout(100);
      expect(consumed).toBe(41);

      await page.waitForFunction(() => Number(document.body.dataset.refreshed) >= 3);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(pageErrors).toEqual([]);
    } finally {
      open = true;
      release();
      await consumer.shutdown();
      await producer.shutdown();
      await transport.close();
    }
  }, 120_000);
});
