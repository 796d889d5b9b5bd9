import type { Broker } from '../broker/broker';
import { type Clock, type Timer, systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { intOption } from '../common/options';
import type { BrokerRegistration } from '../message/protocol';
import { WIRE_NAME_SERVER_OPERATIONS } from '../remoting/operation-codecs';
import { RemotingClient, type RemotingClientOptions, parseAddress } from '../remoting/remoting-client';
import { RequestCode } from '../remoting/request-codes';

/** How often a broker registers again with its name servers: 30 s (RocketMQ `registerNameServerPeriod`). */
export const DEFAULT_REGISTER_INTERVAL_MS = 30_000;
/** RocketMQ's `brokerClusterName` default. */
export const DEFAULT_CLUSTER_NAME = 'DefaultCluster';
/** Most name servers a broker registers with. */
export const MAX_NAME_SERVERS = 32;

export interface BrokerRegistrarOptions {
  broker: Broker;
  /** `host:port` of every name server. */
  nameServers: readonly string[];
  /** The address clients connect to (`host:port`). */
  address: string;
  clusterName?: string;
  brokerId?: number;
  registerIntervalMs?: number;
  clock?: Clock;
  /** A registration that failed (it is retried at the next period). */
  onError?: (error: unknown, nameServer: string) => void;
  /** Options of the connections to the name servers. */
  remoting?: Omit<RemotingClientOptions, 'onServerRequest' | 'clock'>;
}

/**
 * Keeps a broker registered with every name server: at start, every `registerIntervalMs`, and as
 * soon as its topics change (coalesced: one registration in flight, at most one more queued). A
 * registration carries the broker's whole topic list, so the latest one always wins. On close it
 * unregisters, so clients stop routing to the broker at once rather than after the expiry.
 */
export class BrokerRegistrar {
  private readonly client: RemotingClient;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly clusterName: string;
  private readonly brokerId: number;
  private readonly stopWatching: () => void;
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(private readonly options: BrokerRegistrarOptions) {
    if (options.nameServers.length === 0 || options.nameServers.length > MAX_NAME_SERVERS) {
      throw new RocketError(
        'INVALID_OPTION',
        `nameServers must list 1 to ${MAX_NAME_SERVERS} addresses; got ${options.nameServers.length}`,
      );
    }
    for (const address of [...options.nameServers, options.address]) parseAddress(address);
    this.clock = options.clock ?? systemClock;
    this.intervalMs = intOption(
      'broker server',
      'registerIntervalMs',
      options.registerIntervalMs,
      DEFAULT_REGISTER_INTERVAL_MS,
      1,
    );
    this.clusterName = options.clusterName ?? DEFAULT_CLUSTER_NAME;
    this.brokerId = intOption('broker server', 'brokerId', options.brokerId, 0, 0, 0xffff);
    this.client = new RemotingClient({ ...options.remoting, clock: this.clock });
    this.stopWatching = options.broker.watchTopics(() => void this.registerSoon());
  }

  /** Registers with every name server once (resolves with how many accepted) and starts the period. */
  async start(): Promise<{ registered: number; of: number }> {
    const registered = await this.registerAll();
    this.arm();
    return { registered, of: this.options.nameServers.length };
  }

  /** Stops the period and unregisters from every name server (failures are ignored: they expire us). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopWatching();
    this.timer?.cancel();
    await this.running?.catch(() => undefined);
    const op = WIRE_NAME_SERVER_OPERATIONS.unregisterBroker;
    const payload = op.request.encode({
      brokerName: this.options.broker.brokerName,
      brokerId: this.brokerId,
    });
    await Promise.allSettled(
      this.options.nameServers.map((ns) =>
        this.client.request(ns, RequestCode.UNREGISTER_BROKER, payload, { timeoutMs: 1_000 }),
      ),
    );
    await this.client.close();
  }

  private arm(): void {
    this.timer = this.clock.setTimer(this.intervalMs, () => {
      if (this.closed) return;
      void this.registerSoon();
      this.arm();
    });
  }

  /** Runs a registration now, or once more after the one in flight. */
  private registerSoon(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.registerAll();
      } while (this.again && !this.closed);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async registerAll(): Promise<number> {
    const broker = this.options.broker;
    const registration: BrokerRegistration = {
      clusterName: this.clusterName,
      brokerName: broker.brokerName,
      brokerId: this.brokerId,
      address: this.options.address,
      topics: broker.listTopics(),
    };
    const payload = WIRE_NAME_SERVER_OPERATIONS.registerBroker.request.encode(registration);
    const results = await Promise.allSettled(
      this.options.nameServers.map((ns) => this.client.request(ns, RequestCode.REGISTER_BROKER, payload)),
    );
    let registered = 0;
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') registered++;
      else if (!this.closed) this.options.onError?.(result.reason, this.options.nameServers[i]!);
    });
    return registered;
  }
}
