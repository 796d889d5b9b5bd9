import type { EventEmitter } from 'node:events';
import type { Request } from 'express';
import { Producer, RocketError, TransactionProducer } from '@rocketnest/core-broker';
import type {
  ProducerOptions,
  TransactionChecker,
  TransactionProducerOptions,
  Transport,
} from '@rocketnest/core-broker';

/** Default producer group of the Express integration's own producers. */
export const DEFAULT_EXPRESS_PRODUCER_GROUP = 'rocketnest-express';

/** Where the integration's producer comes from: its own (from a transport) or yours. */
export interface ProducerSource {
  /** A transport to create (and own) a producer on: started at first use, shut down by `close()`. */
  transport?: Transport;
  /** Producer group of the owned producer. Default `rocketnest-express`. */
  group?: string;
  /** More options of the owned producer (send timeout, retries…). */
  producerOptions?: Partial<Omit<ProducerOptions, 'transport' | 'group'>>;
  /** Your own producer instead: you start it and shut it down; `close()` leaves it alone. */
  producer?: Producer;
}

/** A producer created on first use and started once; concurrent first uses share the start. */
export class LazyProducer {
  private owned: Producer | undefined;
  private starting: Promise<Producer> | undefined;
  private closed = false;

  constructor(
    private readonly source: ProducerSource,
    private readonly owner: string,
  ) {
    if (!source.producer && !source.transport)
      throw new RocketError('INVALID_OPTION', `${owner} needs option transport (or producer)`);
    if (source.producer && source.transport)
      throw new RocketError('INVALID_OPTION', `${owner}: give transport or producer, not both`);
  }

  get(): Promise<Producer> {
    if (this.closed) return Promise.reject(new RocketError('CLOSED', `${this.owner} is closed`));
    if (this.source.producer) return Promise.resolve(this.source.producer);
    this.starting ??= (async () => {
      const producer = new Producer({
        ...this.source.producerOptions,
        group: this.source.group ?? DEFAULT_EXPRESS_PRODUCER_GROUP,
        transport: this.source.transport as Transport,
      });
      this.owned = producer;
      try {
        await producer.start();
      } catch (error) {
        this.starting = undefined;
        this.owned = undefined;
        throw error;
      }
      return producer;
    })();
    return this.starting;
  }

  /** Shuts the owned producer down (after its in-flight sends). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.reset();
  }

  /** Shuts the owned producer down; unless closed, the next `get()` starts a new one. */
  async reset(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    const producer = await starting?.catch(() => undefined);
    if (producer && producer !== this.source.producer) await producer.shutdown();
    if (this.owned === producer) this.owned = undefined;
  }
}

/** The transactional twin of {@link LazyProducer}; needs a checker for the broker's check-backs. */
export class LazyTransactionProducer {
  private owned: TransactionProducer | undefined;
  private starting: Promise<TransactionProducer> | undefined;
  private closed = false;

  constructor(
    private readonly options: Omit<TransactionProducerOptions, 'checker'> & { checker?: TransactionChecker },
    private readonly owner: string,
  ) {}

  get(): Promise<TransactionProducer> {
    if (this.closed) return Promise.reject(new RocketError('CLOSED', `${this.owner} is closed`));
    const checker = this.options.checker;
    if (!checker)
      return Promise.reject(
        new RocketError(
          'INVALID_OPTION',
          `${this.owner}: sendInTransaction needs option transactionChecker (answers the broker's check-backs)`,
        ),
      );
    this.starting ??= (async () => {
      const producer = new TransactionProducer({ ...this.options, checker });
      this.owned = producer;
      try {
        await producer.start();
      } catch (error) {
        this.starting = undefined;
        this.owned = undefined;
        throw error;
      }
      return producer;
    })();
    return this.starting;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.reset();
  }

  /** Shuts the owned producer down; unless closed, the next `get()` starts a new one. */
  async reset(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    const producer = await starting?.catch(() => undefined);
    await producer?.shutdown();
    if (this.owned === producer) this.owned = undefined;
  }
}

/**
 * The HTTP servers that served a request and have not closed yet; when the last one emits
 * `close` (after `server.close()`), `onAllClosed` runs. Express does not tell a middleware about
 * its server, so the server is found through the request's socket.
 */
export class ServerTracker {
  private readonly servers = new Set<EventEmitter>();

  constructor(private readonly onAllClosed: () => void) {}

  seen(req: Request): void {
    const server = (req.socket as { server?: EventEmitter } | undefined)?.server;
    if (!server || this.servers.has(server)) return;
    this.servers.add(server);
    server.once('close', () => {
      this.servers.delete(server);
      if (this.servers.size === 0) this.onAllClosed();
    });
  }
}
