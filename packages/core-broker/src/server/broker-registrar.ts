import type { Broker } from '../broker/broker';
import { type Clock, type Timer, systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { MAX_U16 } from '../remoting/binary';
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
/** The master's broker id (RocketMQ `MixAll.MASTER_ID`); the default. */
export const MASTER_BROKER_ID = 0;
/** Largest broker id: it travels as a u16. */
export const MAX_BROKER_ID = MAX_U16;
/** How long a broker shutting down waits for each name server to take its unregistration. */
export const UNREGISTER_TIMEOUT_MS = 1_000;

export interface BrokerRegistrarOptions {
  broker: Broker;
  /** `host:port` of every name server. */
  nameServers: readonly string[];
  /** The address clients connect to (`host:port`). */
  address: string;
  /** `host:port` of the broker's RocketMQ 5 gRPC endpoint, told to name servers for gRPC routes. */
  grpcAddress?: string;
  /**
   * The master's HA address (`host:port`) to register, read at each registration (a promoted slave
   * opens its HA port at run time); `undefined` registers none. (RocketMQ `haServerAddr`)
   */
  haAddress?: () => string | undefined;
  /** Default {@link DEFAULT_CLUSTER_NAME}. (RocketMQ `brokerClusterName`) */
  clusterName?: string;
  /** 0 ({@link MASTER_BROKER_ID}) = master; at most {@link MAX_BROKER_ID}. (RocketMQ `brokerId`) */
  brokerId?: number;
  /** Default {@link DEFAULT_REGISTER_INTERVAL_MS}. (RocketMQ `registerNameServerPeriod`) */
  registerIntervalMs?: number;
  clock?: Clock;
  /** A registration that failed (it is retried at the next period). */
  onError?: (error: unknown, nameServer: string) => void;
  /** Options of the connections to the name servers. */
  remoting?: Omit<RemotingClientOptions, 'onServerRequest' | 'clock'>;
}

/** A registrar's options, checked, with defaults filled in. */
export interface ResolvedBrokerRegistrarOptions extends BrokerRegistrarOptions {
  readonly clusterName: string;
  readonly brokerId: number;
  readonly registerIntervalMs: number;
  readonly clock: Clock;
}

/** Checks a registrar's options (`INVALID_OPTION` / `INVALID_ARGUMENT` naming the bad one) and freezes them. */
export function resolveBrokerRegistrarOptions(
  options: BrokerRegistrarOptions,
): ResolvedBrokerRegistrarOptions {
  if (options.nameServers.length === 0 || options.nameServers.length > MAX_NAME_SERVERS) {
    throw new RocketError(
      'INVALID_OPTION',
      `nameServers must list 1 to ${MAX_NAME_SERVERS} addresses; got ${options.nameServers.length}`,
    );
  }
  for (const address of [...options.nameServers, options.address]) parseAddress(address);
  if (options.grpcAddress !== undefined) parseAddress(options.grpcAddress);
  return Object.freeze({
    ...options,
    nameServers: Object.freeze([...options.nameServers]),
    clusterName: options.clusterName ?? DEFAULT_CLUSTER_NAME,
    registerIntervalMs: intOption(
      'broker server',
      'registerIntervalMs',
      options.registerIntervalMs,
      DEFAULT_REGISTER_INTERVAL_MS,
      1,
    ),
    brokerId: intOption('broker server', 'brokerId', options.brokerId, MASTER_BROKER_ID, 0, MAX_BROKER_ID),
    clock: options.clock ?? systemClock,
  });
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
  private brokerId: number;
  private readonly stopWatching: () => void;
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private latest: { registered: number; of: number } | undefined;

  private readonly options: ResolvedBrokerRegistrarOptions;

  constructor(options: BrokerRegistrarOptions) {
    this.options = resolveBrokerRegistrarOptions(options);
    this.clock = this.options.clock;
    this.intervalMs = this.options.registerIntervalMs;
    this.clusterName = this.options.clusterName;
    this.brokerId = this.options.brokerId;
    this.client = new RemotingClient({ ...this.options.remoting, clock: this.clock });
    this.stopWatching = this.options.broker.watchTopics(() => void this.registerSoon());
  }

  /** Registers with every name server once (resolves with how many accepted) and starts the period. */
  async start(): Promise<{ registered: number; of: number }> {
    const registered = await this.registerAll();
    this.arm();
    return { registered, of: this.options.nameServers.length };
  }

  /**
   * Registers under another broker id from now on (a slave promoted to master takes id 0): the old
   * id is unregistered (failures ignored: it expires), the new one registered at once.
   */
  async changeBrokerId(brokerId: number): Promise<void> {
    if (brokerId === this.brokerId || this.closed) return;
    const old = this.brokerId;
    this.brokerId = brokerId;
    await this.running?.catch(() => undefined);
    const payload = WIRE_NAME_SERVER_OPERATIONS.unregisterBroker.request.encode({
      brokerName: this.options.broker.brokerName,
      brokerId: old,
    });
    await Promise.allSettled(
      this.options.nameServers.map((ns) =>
        this.client.request(ns, RequestCode.UNREGISTER_BROKER, payload, { timeoutMs: UNREGISTER_TIMEOUT_MS }),
      ),
    );
    await this.registerSoon();
  }

  /** How many name servers accepted the latest registration round (undefined before the first ends). */
  get status(): { registered: number; of: number } | undefined {
    return this.latest;
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
        this.client.request(ns, RequestCode.UNREGISTER_BROKER, payload, { timeoutMs: UNREGISTER_TIMEOUT_MS }),
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
    const haAddress = this.options.haAddress?.();
    const registration: BrokerRegistration = {
      clusterName: this.clusterName,
      brokerName: broker.brokerName,
      brokerId: this.brokerId,
      address: this.options.address,
      ...(this.options.grpcAddress === undefined ? {} : { grpcAddress: this.options.grpcAddress }),
      ...(haAddress === undefined ? {} : { haAddress }),
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
    this.latest = { registered, of: this.options.nameServers.length };
    return registered;
  }
}
