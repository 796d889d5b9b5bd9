import { Inject, Injectable } from '@nestjs/common';
import type { OrderStatus } from '../contracts';
import type { SqliteDatabase } from '../sqlite-database';
import { ORDER_DATABASE } from './order-database.module';

export type TimelineEvent = OrderStatus | 'note';

/** What happened to an order, with the broker message that made it happen. */
export interface TimelineEntry {
  /** `created`, `paid`, `failed` or `cancelled` (once each at most), or `note` (any number). */
  event: TimelineEvent;
  /** Topic and tag of the message behind the entry. */
  topic: string;
  tag: string;
  /** The broker's message id; `null` until the order service has seen its own `orders`/`created`. */
  msgId: string | null;
  atMs: number;
  detail: string | null;
}

export interface OrderRecord {
  id: string;
  status: OrderStatus;
  amountCents: number;
  cardLast4: string;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface OrderView extends OrderRecord {
  timeline: TimelineEntry[];
}

/** A new order as written by {@link OrderRepository.insert}. */
export interface NewOrder {
  id: string;
  amountCents: number;
  cardLast4: string;
  createdAtMs: number;
}

/** The outcome of a state change: applied, or why not (expected outcomes are values). */
export type TransitionResult =
  | { applied: true; order: OrderRecord }
  | { applied: false; reason: 'not-found' }
  | { applied: false; reason: 'not-created'; status: OrderStatus }
  /** The inbox had processed this message already. */
  | { applied: false; reason: 'duplicate' };

interface OrderRow {
  id: string;
  status: OrderStatus;
  amount_cents: number;
  card_last4: string;
  created_at_ms: number;
  updated_at_ms: number;
}

interface TimelineRow {
  event: TimelineEvent;
  topic: string;
  tag: string;
  msg_id: string | null;
  at_ms: number;
  detail: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS orders (
  id            TEXT PRIMARY KEY,
  status        TEXT NOT NULL CHECK (status IN ('created', 'paid', 'failed', 'cancelled')),
  amount_cents  INTEGER NOT NULL CHECK (amount_cents > 0),
  card_last4    TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_timeline (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  order_id TEXT NOT NULL REFERENCES orders (id),
  event    TEXT NOT NULL,
  topic    TEXT NOT NULL,
  tag      TEXT NOT NULL,
  msg_id   TEXT,
  at_ms    INTEGER NOT NULL,
  detail   TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS order_timeline_status ON order_timeline (order_id, event) WHERE event <> 'note';
`;

/** Orders and their timelines in the order service's SQLite database. */
@Injectable()
export class OrderRepository {
  constructor(@Inject(ORDER_DATABASE) readonly db: SqliteDatabase) {
    db.exec(SCHEMA);
  }

  /** Runs `work` in one SQLite transaction (nested calls become savepoints). */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  /** Inserts a new order in status `created`, with the `created` timeline entry (message id not known yet). */
  insert(order: NewOrder): void {
    this.db
      .prepare(
        `INSERT INTO orders (id, status, amount_cents, card_last4, created_at_ms, updated_at_ms)
         VALUES (?, 'created', ?, ?, ?, ?)`,
      )
      .run(order.id, order.amountCents, order.cardLast4, order.createdAtMs, order.createdAtMs);
    this.db
      .prepare(
        `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
         VALUES (?, 'created', 'orders', 'created', NULL, ?, NULL)`,
      )
      .run(order.id, order.createdAtMs);
  }

  find(orderId: string): OrderRecord | undefined {
    const row = this.db.prepare('SELECT * FROM orders WHERE id = ?').get(orderId) as OrderRow | undefined;
    return row && toRecord(row);
  }

  view(orderId: string): OrderView | undefined {
    const order = this.find(orderId);
    if (!order) return undefined;
    const rows = this.db
      .prepare(
        'SELECT event, topic, tag, msg_id, at_ms, detail FROM order_timeline WHERE order_id = ? ORDER BY seq',
      )
      .all(orderId) as TimelineRow[];
    return {
      ...order,
      timeline: rows.map((r) => ({
        event: r.event,
        topic: r.topic,
        tag: r.tag,
        msgId: r.msg_id,
        atMs: r.at_ms,
        detail: r.detail,
      })),
    };
  }

  /** The most recent orders, newest first. */
  recent(limit: number): OrderRecord[] {
    const rows = this.db
      .prepare('SELECT * FROM orders ORDER BY created_at_ms DESC, rowid DESC LIMIT ?')
      .all(limit) as OrderRow[];
    return rows.map(toRecord);
  }

  /** Records the message id of the order's `orders`/`created` once; later calls change nothing. */
  recordCreatedMessage(orderId: string, msgId: string): boolean {
    const result = this.db
      .prepare(
        `UPDATE order_timeline SET msg_id = ? WHERE order_id = ? AND event = 'created' AND msg_id IS NULL`,
      )
      .run(msgId, orderId);
    return result.changes === 1;
  }

  /**
   * Moves an order from `created` to `to` and appends the timeline entry, in one transaction.
   * The state machine allows nothing else: an order that is already paid, failed or cancelled is
   * left as it is (`not-created`), so a redelivered or late message changes nothing.
   */
  transition(
    orderId: string,
    to: Exclude<OrderStatus, 'created'>,
    cause: { topic: string; tag: string; msgId: string; atMs: number; detail?: string },
  ): TransitionResult {
    return this.db.transaction((): TransitionResult => {
      const updated = this.db
        .prepare(`UPDATE orders SET status = ?, updated_at_ms = ? WHERE id = ? AND status = 'created'`)
        .run(to, cause.atMs, orderId);
      if (updated.changes === 0) {
        const current = this.find(orderId);
        return current
          ? { applied: false, reason: 'not-created', status: current.status }
          : { applied: false, reason: 'not-found' };
      }
      this.db
        .prepare(
          `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(orderId, to, cause.topic, cause.tag, cause.msgId, cause.atMs, cause.detail ?? null);
      return { applied: true, order: this.find(orderId)! };
    })();
  }

  /** Appends a note (from an outside system) to an order's timeline; false for an unknown order. */
  addNote(
    orderId: string,
    note: { topic: string; tag: string; msgId: string; atMs: number; text: string },
  ): boolean {
    if (!this.find(orderId)) return false;
    this.db
      .prepare(
        `INSERT INTO order_timeline (order_id, event, topic, tag, msg_id, at_ms, detail)
         VALUES (?, 'note', ?, ?, ?, ?, ?)`,
      )
      .run(orderId, note.topic, note.tag, note.msgId, note.atMs, note.text);
    return true;
  }
}

function toRecord(row: OrderRow): OrderRecord {
  return {
    id: row.id,
    status: row.status,
    amountCents: row.amount_cents,
    cardLast4: row.card_last4,
    createdAtMs: row.created_at_ms,
    updatedAtMs: row.updated_at_ms,
  };
}
