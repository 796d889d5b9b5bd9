import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { RocketError } from '@rocketnest/core-broker';
import { type OutboxMessage } from '@rocketnest/core-broker/outbox';
import { rocketProduceRouter, type OutboxWriter, type RocketProduceRouter } from '@rocketnest/express';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ORDER_NOTE_TAG, ORDER_NOTES_TOPIC, isOrderNoteEvent } from '../contracts';
import { OrderStore } from './order.store';
import { ORDER_SERVICE_OPTIONS, type OrderServiceOptions } from './order-service.options';

/** Where `@rocketnest/express`'s produce router is mounted: `POST /external/topics/order-notes/messages`. */
export const EXTERNAL_EVENTS_PATH = '/external';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Accepts events from outside systems over HTTP with `@rocketnest/express`'s `rocketProduceRouter`,
 * mounted on the Nest app's Express instance: a courier or a support desk posts a note about an
 * order (`order-notes`, tag `note`, body `{ "orderId", "text" }`) with `Authorization: Bearer
 * <token>`. The router brings the REST produce API (envelope or headers, `Idempotency-Key`,
 * `application/problem+json` errors); in outbox mode it answers 202 and this writer stores the
 * message as an outbox row, checked against the orders table in the same transaction, so a note
 * is only published for an order that exists, and only if the write committed.
 */
@Injectable()
export class ExternalEventsRouter implements OnModuleInit, BeforeApplicationShutdown {
  private router: RocketProduceRouter | undefined;
  private readonly token: Buffer | undefined;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly orders: OrderStore,
    @Inject(ORDER_SERVICE_OPTIONS) options: OrderServiceOptions,
  ) {
    this.token = options.externalEventsToken ? digest(options.externalEventsToken) : undefined;
  }

  onModuleInit(): void {
    const http = this.adapterHost.httpAdapter;
    if (!http || !this.token) return;
    this.router = rocketProduceRouter({
      outbox: this.writer(),
      topics: [ORDER_NOTES_TOPIC],
      authorize: (req, _topic, tag) => {
        if (!this.authenticated(req)) return 'unauthenticated';
        return tag === ORDER_NOTE_TAG;
      },
    });
    http.use(EXTERNAL_EVENTS_PATH, this.router);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.router?.close();
  }

  private authenticated(req: Request): boolean {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    return match !== null && timingSafeEqual(digest(match[1]!), this.token!);
  }

  /** Validates each note, and writes its outbox row (grouped and keyed by the order) in one transaction. */
  private writer(): OutboxWriter {
    return (messages) => {
      try {
        const notes = messages.map((message) => this.note(message));
        return this.orders.addForOrders(
          notes.map((note) => note.orderId),
          notes.map((note) => note.message),
        );
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }

  /** Checks a note's body; the store checks, in its transaction, that the order exists. */
  private note(message: OutboxMessage): { orderId: string; message: OutboxMessage } {
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(message.body).toString('utf8'));
    } catch {
      body = undefined;
    }
    if (!isOrderNoteEvent(body)) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        'a note is JSON { "orderId": "…", "text": "1 to 500 characters" }',
      );
    }
    return {
      orderId: body.orderId,
      message: { ...message, messageGroup: body.orderId, keys: [...(message.keys ?? []), body.orderId] },
    };
  }
}
