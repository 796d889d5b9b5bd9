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

/** A client made on first use and started once; concurrent first uses share the start. */
class LazyClient<T extends { start(): Promise<void>; shutdown(): Promise<void> }> {
  private starting: Promise<T> | undefined;
  private closed = false;

  constructor(
    private readonly owner: string,
    private readonly make: () => T,
  ) {}

  get(): Promise<T> {
    if (this.closed) return Promise.reject(new RocketError('CLOSED', `${this.owner} is closed`));
    this.starting ??= (async () => {
      const client = this.make();
      try {
        await client.start();
      } catch (error) {
        this.starting = undefined;
        throw error;
      }
      return client;
    })();
    return this.starting;
  }

  /** Shuts the client down (after its in-flight sends). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.reset();
  }

  /** Shuts the client down; unless closed, the next `get()` starts a new one. */
  async reset(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    await (await starting?.catch(() => undefined))?.shutdown();
  }
}

/** The integration's producer: yours as given, or its own, created and started on first use. */
export class LazyProducer {
  private readonly own: LazyClient<Producer> | undefined;
  private closed = false;

  constructor(
    private readonly source: ProducerSource,
    private readonly owner: string,
  ) {
    if (!source.producer && !source.transport)
      throw new RocketError('INVALID_OPTION', `${owner} needs option transport (or producer)`);
    if (source.producer && source.transport)
      throw new RocketError('INVALID_OPTION', `${owner}: give transport or producer, not both`);
    if (!source.producer) {
      this.own = new LazyClient(
        owner,
        () =>
          new Producer({
            ...source.producerOptions,
            group: source.group ?? DEFAULT_EXPRESS_PRODUCER_GROUP,
            transport: source.transport as Transport,
          }),
      );
    }
  }

  get(): Promise<Producer> {
    if (this.closed) return Promise.reject(new RocketError('CLOSED', `${this.owner} is closed`));
    return this.own ? this.own.get() : Promise.resolve(this.source.producer!);
  }

  /** Shuts the owned producer down (after its in-flight sends); yours is left alone. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.own?.close();
  }

  /** Shuts the owned producer down; unless closed, the next `get()` starts a new one. */
  reset(): Promise<void> {
    return this.own?.reset() ?? Promise.resolve();
  }
}

/** The transactional twin of {@link LazyProducer}; needs a checker for the broker's check-backs. */
export class LazyTransactionProducer {
  private readonly own: LazyClient<TransactionProducer>;

  constructor(
    private readonly options: Omit<TransactionProducerOptions, 'checker'> & { checker?: TransactionChecker },
    private readonly owner: string,
  ) {
    this.own = new LazyClient(
      owner,
      () => new TransactionProducer({ ...options, checker: options.checker! }),
    );
  }

  get(): Promise<TransactionProducer> {
    if (!this.options.checker)
      return Promise.reject(
        new RocketError(
          'INVALID_OPTION',
          `${this.owner}: sendInTransaction needs option transactionChecker (answers the broker's check-backs)`,
        ),
      );
    return this.own.get();
  }

  close(): Promise<void> {
    return this.own.close();
  }

  /** Shuts the owned producer down; unless closed, the next `get()` starts a new one. */
  reset(): Promise<void> {
    return this.own.reset();
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
