// The end-to-end checks of `pnpm demo:smoke`, against a running demo's HTTP API.
import { TEST_CARDS, type OrderStatus } from './contracts';

/** What a smoke check found instead of what it expected. */
export class SmokeMismatchError extends Error {
  override readonly name = 'SmokeMismatchError';
}

export interface SmokeOptions {
  /** The demo's `ORDER_TIMEOUT_MS`: the timed-out order must stay unpaid at least this long. */
  orderTimeoutMs: number;
  /** Upper bound on each wait for a status. Default: the order timeout plus 10 s. */
  waitMs?: number;
  /** The demo's external events token: when given, a note is posted for the paid order and must reach its timeline. */
  externalEventsToken?: string;
  /** Called with a line per passed check. */
  log?: (line: string) => void;
}

interface OrderBody {
  id: string;
  status: OrderStatus;
  createdAtMs: number;
  updatedAtMs: number;
  timeline: Array<{ event: string; topic: string; tag: string; msgId: string | null }>;
}

/** Bound on one HTTP request of the checks. */
const REQUEST_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 100;

async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Partial<OrderBody> | undefined }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new SmokeMismatchError(`${method} ${path}: answer is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: response.status, json: json as Partial<OrderBody> | undefined };
}

function expectThat(ok: boolean, message: string): asserts ok {
  if (!ok) throw new SmokeMismatchError(message);
}

async function place(base: string, card: string): Promise<OrderBody> {
  const { status, json } = await request(base, 'POST', '/orders', { amountCents: 2500, card });
  expectThat(
    status === 201,
    `POST /orders (card …${card.slice(-4)}): expected 201, got ${status} ${JSON.stringify(json)}`,
  );
  expectThat(json?.status === 'created', `a new order must be "created", got ${JSON.stringify(json)}`);
  return json as OrderBody;
}

async function get(base: string, id: string): Promise<OrderBody> {
  const { status, json } = await request(base, 'GET', `/orders/${id}`);
  expectThat(status === 200, `GET /orders/${id}: expected 200, got ${status}`);
  return json as OrderBody;
}

async function waitForStatus(
  base: string,
  id: string,
  wanted: OrderStatus,
  waitMs: number,
): Promise<OrderBody> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const order = await get(base, id);
    if (order.status === wanted) return order;
    expectThat(order.status === 'created', `order ${id}: expected "${wanted}", it became "${order.status}"`);
    expectThat(
      Date.now() < deadline,
      `order ${id}: still "${order.status}" after ${waitMs} ms, expected "${wanted}"`,
    );
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

function checkTimeline(order: OrderBody, events: string[]): void {
  const got = order.timeline.map((e) => e.event);
  expectThat(
    JSON.stringify(got) === JSON.stringify(events),
    `order ${order.id}: timeline ${JSON.stringify(got)}, expected ${JSON.stringify(events)}`,
  );
  for (const entry of order.timeline) {
    expectThat(
      typeof entry.msgId === 'string' && entry.msgId.length > 0,
      `order ${order.id}: ${entry.event} has no message id`,
    );
  }
}

/**
 * Places one order per path (paid, failed, timed out) and checks each ends where it must, with a
 * message id on every timeline entry; checks that a paid order is not cancelled by its later
 * timeout, that a bad order is refused, and (with a token) that an external event reaches a timeline. Throws {@link SmokeMismatchError} at the first mismatch.
 */
export async function runSmokeChecks(base: string, options: SmokeOptions): Promise<void> {
  const log = options.log ?? (() => undefined);
  const waitMs = options.waitMs ?? options.orderTimeoutMs + 10_000;

  const bad = await request(base, 'POST', '/orders', { amountCents: -1, card: TEST_CARDS.APPROVED });
  expectThat(bad.status === 400, `a negative amount must be refused with 400, got ${bad.status}`);
  log('bad order refused with 400');

  const [toPay, toFail, toTimeOut] = [
    await place(base, TEST_CARDS.APPROVED),
    await place(base, TEST_CARDS.DECLINED),
    await place(base, TEST_CARDS.NO_ANSWER),
  ];

  const paid = await waitForStatus(base, toPay.id, 'paid', waitMs);
  checkTimeline(paid, ['created', 'paid']);
  log(`paid: ${paid.id} (payment message ${paid.timeline[1]!.msgId})`);

  const failed = await waitForStatus(base, toFail.id, 'failed', waitMs);
  checkTimeline(failed, ['created', 'failed']);
  log(`failed: ${failed.id} (payment message ${failed.timeline[1]!.msgId})`);

  const cancelled = await waitForStatus(base, toTimeOut.id, 'cancelled', waitMs);
  checkTimeline(cancelled, ['created', 'cancelled']);
  const unpaidForMs = cancelled.updatedAtMs - cancelled.createdAtMs;
  expectThat(
    unpaidForMs >= options.orderTimeoutMs,
    `order ${cancelled.id} was cancelled after ${unpaidForMs} ms, before its ${options.orderTimeoutMs} ms timeout`,
  );
  log(`timed out: ${cancelled.id} after ${unpaidForMs} ms (timeout message ${cancelled.timeline[1]!.msgId})`);

  // the paid and failed orders' timeouts were due first (they were placed first); give their
  // handlers a moment, then nothing may have changed
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const before of [paid, failed]) {
    const after = await get(base, before.id);
    expectThat(
      JSON.stringify(after) === JSON.stringify(before),
      `order ${before.id} changed after its timeout: ${JSON.stringify(after)}`,
    );
  }
  log('paid and failed orders unchanged by their timeouts');

  if (options.externalEventsToken !== undefined) {
    const response = await fetch(`${base}/external/topics/order-notes/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/vnd.rocketnest.message+json',
        authorization: `Bearer ${options.externalEventsToken}`,
      },
      body: JSON.stringify({ tag: 'note', body: { orderId: paid.id, text: 'smoke note' } }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    expectThat(response.status === 202, `POST /external/…/messages: expected 202, got ${response.status}`);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const order = await get(base, paid.id);
      const note = order.timeline.find((e) => e.event === 'note');
      if (note) {
        expectThat(typeof note.msgId === 'string' && note.msgId.length > 0, `the note has no message id`);
        log(`external event: note on ${paid.id} (message ${note.msgId})`);
        break;
      }
      expectThat(
        Date.now() < deadline,
        `the external note for ${paid.id} did not reach its timeline in ${waitMs} ms`,
      );
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }

  const ids = [paid, failed, cancelled].flatMap((o) => o.timeline.map((e) => e.msgId));
  expectThat(new Set(ids).size === ids.length, `message ids repeat across timelines: ${ids.join(', ')}`);
}
