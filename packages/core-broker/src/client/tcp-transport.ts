import { RocketError, isRocketError } from '../common/errors';
import {
  type AdminOperationName,
  type AdminOperationRequest,
  type AdminOperationResponse,
  OPERATIONS,
  type OperationRequest,
  type OperationResponse,
  type PerBrokerOperationName,
} from '../message/operations';
import type { ClientChannel, ClusterInfo, CommitOffsetRequest, TopicRoute } from '../message/protocol';
import {
  WIRE_ADMIN_OPERATIONS,
  WIRE_CHANNEL_OPERATIONS,
  WIRE_NAME_SERVER_OPERATIONS,
  WIRE_OPERATIONS,
  type WireOperation,
} from '../remoting/operation-codecs';
import type { Codec, Payload } from '../remoting/codec';
import { pullRequestCodec } from '../remoting/consume-codec';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  RemotingClient,
  type RemotingClientOptions,
  parseAddress,
} from '../remoting/remoting-client';
import { RequestCode, requestCodeName } from '../remoting/request-codes';
import { OperationTransport, type Transport } from './transport';

/**
 * The per-broker operations a slave may serve while its master is down: reads, offsets and group
 * membership (RocketMQ's consumer finds these with `findBrokerAddressInSubscribe`, which falls back
 * to a slave). Everything that writes, pops, or locks queues goes to the master only.
 */
export const SLAVE_READABLE_OPERATIONS: ReadonlySet<PerBrokerOperationName> = new Set<PerBrokerOperationName>(
  [
    'pull',
    'queryOffset',
    'commitOffset',
    'minOffset',
    'maxOffset',
    'searchOffset',
    'heartbeat',
    'consumerIds',
  ],
);

/**
 * Most offset commits held per broker name while its master is down (one per queue, the latest
 * wins). A commit dropped past it only makes the master's offset older: redelivery, never a skip.
 */
export const MAX_HELD_COMMITS_PER_BROKER = 65_536;

export interface TcpTransportOptions extends Omit<RemotingClientOptions, 'onServerRequest'> {
  /**
   * Name servers (`host:port` each) that give topic routes and broker addresses; the transport
   * asks one and moves to the next when it does not answer. (RocketMQ `namesrvAddr`)
   */
  nameServers?: readonly string[];
  /**
   * Standalone broker(s) without name servers (routes are then asked of every listed broker and
   * merged): addresses (`['host:port']`), whose broker names are learned from the brokers at first
   * use, or addresses by broker name (`{ 'broker-a': 'host:port' }`).
   */
  brokers?: Record<string, string> | readonly string[];
}

/**
 * A {@link Transport} over the remoting protocol (`RemotingClient`): one TCP connection per broker,
 * opened at first use. Error responses reject with the broker's own `RocketError` (same code,
 * message, retriable flag); a broker it has no address for, or cannot reach, rejects with retriable
 * `BROKER_UNAVAILABLE`, as `InProcessTransport` does.
 *
 * - `topicRoute` asks a name server (the one that answered last; on no answer, the next in the
 *   list; `NAME_SERVER_UNAVAILABLE` when none does) and learns the brokers' addresses from the
 *   route; without name servers it asks every listed broker for its part and merges them;
 * - long pulls and pops wait `requestTimeoutMs` beyond their suspend/poll time;
 * - `register` keeps the channel here; a heartbeat makes its connection the way a broker reaches
 *   this process, and the broker's one-way requests (check transaction, consumer ids changed,
 *   reset offset) go to every registered channel — each client ignores groups not its own;
 * - `endTransaction` from a check-back is one-way, as in RocketMQ.
 *
 * Every per-broker call is a row of the operation table (`message/operations.ts`), sent with the
 * row's request code and codecs (`WIRE_OPERATIONS`, `remoting/operation-codecs.ts`).
 */
export class TcpTransport extends OperationTransport implements Transport {
  /** Master addresses by broker name. */
  private readonly addresses = new Map<string, string>();
  /** Slave addresses by broker name, lowest broker id first (from the name servers' routes). */
  private readonly slaveAddresses = new Map<string, readonly string[]>();
  /**
   * Broker names whose master is down: the latest route listed only slaves, or a read could not
   * reach it. A route that lists the master again clears it.
   */
  private readonly mastersDown = new Set<string>();
  /**
   * Offset commits a slave took while the master was down, by broker name then queue: pushed to
   * the master before anything else once it answers again (RocketMQ keeps offsets on the master).
   */
  private readonly heldCommits = new Map<string, Map<string, CommitOffsetRequest>>();
  /** Broker addresses given without a name: asked for it at first use. */
  private unnamed: string[] = [];
  private learning: Promise<void> | undefined;
  private readonly channels = new Map<string, ClientChannel>();
  /** Broker addresses that refused the records form of pull responses (older brokers). */
  private readonly viewsOnlyBrokers = new Set<string>();
  private readonly client: RemotingClient;
  private readonly requestTimeoutMs: number;
  private readonly nameServers: readonly string[];
  /** Index of the name server asked first: the one that answered last. */
  private nameServerIndex: number;

  constructor(options: TcpTransportOptions) {
    super();
    const { brokers, nameServers, ...remoting } = options ?? {};
    if (Array.isArray(brokers)) {
      for (const address of brokers as readonly string[]) parseAddress(address);
      this.unnamed = [...new Set(brokers as readonly string[])];
    } else {
      for (const [name, address] of Object.entries(brokers ?? {})) this.addBroker(name, address);
    }
    if (nameServers !== undefined && !Array.isArray(nameServers)) {
      throw new RocketError(
        'INVALID_OPTION',
        'TcpTransport option nameServers must be an array of host:port',
      );
    }
    for (const address of nameServers ?? []) parseAddress(address);
    this.nameServers = [...(nameServers ?? [])];
    if (this.nameServers.length === 0 && this.addresses.size === 0 && this.unnamed.length === 0) {
      throw new RocketError(
        'INVALID_OPTION',
        'TcpTransport needs nameServers (a cluster) or brokers (a standalone broker by name and address)',
      );
    }
    // clients of one application spread over the name servers, as RocketMQ's random start
    this.nameServerIndex = Math.floor(Math.random() * Math.max(1, this.nameServers.length));
    this.requestTimeoutMs = remoting.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.client = new RemotingClient({
      ...remoting,
      onServerRequest: (code, payload) => this.onServerRequest(code, payload),
    });
  }

  /** Adds (or moves) a broker's address. */
  addBroker(brokerName: string, address: string): void {
    parseAddress(address);
    this.addresses.set(brokerName, address);
  }

  /** Forgets a broker: calls to it reject with `BROKER_UNAVAILABLE`. */
  removeBroker(brokerName: string): boolean {
    return this.addresses.delete(brokerName);
  }

  brokerNames(): string[] {
    return [...this.addresses.keys()];
  }

  /** The remoting client underneath (in-flight counts, connection state). */
  get remoting(): RemotingClient {
    return this.client;
  }

  async topicRoute(topic: string): Promise<TopicRoute> {
    if (this.nameServers.length > 0) return this.routeFromNameServers(topic);
    await this.learnBrokerNames();
    const route: TopicRoute = { topic, brokers: [] };
    const parts = await Promise.allSettled(
      this.brokerNames().map((name) => this.call(name, WIRE_OPERATIONS.topicRoute, { topic })),
    );
    let failure: unknown;
    for (const part of parts) {
      if (part.status === 'fulfilled') route.brokers.push(...part.value.brokers);
      else if (!isRocketError(part.reason, 'TOPIC_NOT_FOUND')) failure ??= part.reason;
    }
    if (route.brokers.length === 0) {
      if (failure !== undefined) throw failure;
      throw new RocketError('TOPIC_NOT_FOUND', `no broker serves topic "${topic}"`);
    }
    return route;
  }

  /** Every per-broker row of the operation table: its request code and codecs, one request frame. */
  async invoke<N extends PerBrokerOperationName>(
    brokerName: string,
    name: N,
    request: OperationRequest<N>,
  ): Promise<OperationResponse<N>> {
    const wire = WIRE_OPERATIONS[name] as WireOperation<OperationRequest<N>, OperationResponse<N>>;
    if (wire.oneWay?.(request)) {
      const payload = this.encode(wire.code, wire.request, request);
      await this.client.oneWay(await this.resolve(brokerName), wire.code, payload);
      return undefined as OperationResponse<N>;
    }
    const waitMs = (OPERATIONS[name].waitMs as ((r: OperationRequest<N>) => number) | undefined)?.(request);
    if (!SLAVE_READABLE_OPERATIONS.has(name) || !this.slaveAddresses.has(brokerName)) {
      return this.call(brokerName, wire, request, waitMs);
    }
    return this.readWithFailover(brokerName, name, wire, request, waitMs);
  }

  /**
   * A read-side operation on a broker name that has slaves: to the master while it is up (first
   * pushing the commits a slave held meanwhile), else to its first reachable slave. A master that
   * cannot be reached (`BROKER_UNAVAILABLE`: refused, closed) is marked down and the call goes to a
   * slave at once. Heartbeats go to the master and every slave, as RocketMQ's consumers send them
   * to every broker address, so a slave knows the group's members when the master dies.
   */
  private async readWithFailover<N extends PerBrokerOperationName>(
    brokerName: string,
    name: N,
    wire: WireOperation<OperationRequest<N>, OperationResponse<N>>,
    request: OperationRequest<N>,
    waitMs: number | undefined,
  ): Promise<OperationResponse<N>> {
    const slaves = this.slaveAddresses.get(brokerName) ?? [];
    if (name === 'heartbeat') {
      const targets = [...(this.mastersDown.has(brokerName) ? [] : [undefined]), ...slaves];
      const results = await Promise.allSettled(
        targets.map((address) =>
          address === undefined
            ? this.onMaster(brokerName, wire, request, waitMs)
            : this.callAt(address, wire, request, waitMs),
        ),
      );
      const ok = results.find((r) => r.status === 'fulfilled');
      if (ok) return ok.value;
      throw (results[0] as PromiseRejectedResult).reason;
    }
    if (!this.mastersDown.has(brokerName)) {
      try {
        return await this.onMaster(brokerName, wire, request, waitMs);
      } catch (error) {
        if (!isRocketError(error, 'BROKER_UNAVAILABLE') || slaves.length === 0) throw error;
        this.mastersDown.add(brokerName);
      }
    }
    let failure: unknown;
    for (const address of slaves) {
      try {
        const response = await this.callAt(address, wire, request, waitMs);
        if (name === 'commitOffset') this.holdCommit(brokerName, request as CommitOffsetRequest);
        return response;
      } catch (error) {
        if (!isRocketError(error, 'BROKER_UNAVAILABLE')) throw error;
        failure = error;
      }
    }
    throw new RocketError(
      'BROKER_UNAVAILABLE',
      `broker "${brokerName}": its master is down and no slave answered (${(failure as Error | undefined)?.message ?? 'none listed'})`,
      { cause: failure },
    );
  }

  /** A call to the master of `brokerName`, after the offset commits its slaves held for it. */
  private async onMaster<Req, Res>(
    brokerName: string,
    wire: WireOperation<Req, Res>,
    request: Req,
    waitMs: number | undefined,
  ): Promise<Res> {
    const held = this.heldCommits.get(brokerName);
    if (held !== undefined && held.size > 0) {
      const commit = WIRE_OPERATIONS.commitOffset;
      for (const [key, pending] of [...held]) {
        await this.call(brokerName, commit, pending);
        if (held.get(key) === pending) held.delete(key);
      }
      if (held.size === 0) this.heldCommits.delete(brokerName);
    }
    const response = await this.call(brokerName, wire, request, waitMs);
    if (wire.code === WIRE_OPERATIONS.commitOffset.code) {
      // a newer commit on the master supersedes the one held for the same queue
      const c = request as unknown as CommitOffsetRequest;
      this.heldCommits.get(brokerName)?.delete(commitKey(c));
    }
    return response;
  }

  private holdCommit(brokerName: string, request: CommitOffsetRequest): void {
    let held = this.heldCommits.get(brokerName);
    if (held === undefined) this.heldCommits.set(brokerName, (held = new Map()));
    const key = commitKey(request);
    held.delete(key);
    if (held.size >= MAX_HELD_COMMITS_PER_BROKER) held.delete(held.keys().next().value!);
    held.set(key, { ...request });
  }

  register(clientId: string, channel: ClientChannel): void {
    this.channels.set(clientId, channel);
  }

  /** Leaves every known broker (slaves included); unreachable brokers drop the client when its connection closes anyway. */
  async unregister(clientId: string): Promise<void> {
    this.channels.delete(clientId);
    const slaves = [...this.slaveAddresses.values()].flat();
    const results = await Promise.allSettled([
      ...this.brokerNames().map((name) => this.call(name, WIRE_OPERATIONS.unregisterClient, { clientId })),
      ...slaves.map((address) => this.callAt(address, WIRE_OPERATIONS.unregisterClient, { clientId })),
    ]);
    for (const r of results) {
      if (r.status === 'rejected' && !isRocketError(r.reason, 'BROKER_UNAVAILABLE')) throw r.reason;
    }
  }

  private async routeFromNameServers(topic: string): Promise<TopicRoute> {
    const route = await this.askNameServers(`topic "${topic}"`, WIRE_NAME_SERVER_OPERATIONS.topicRoute, {
      topic,
    });
    for (const b of route.brokers) {
      if (b.address !== undefined) {
        this.addBroker(b.brokerName, b.address);
        this.mastersDown.delete(b.brokerName);
      } else if (b.slaves !== undefined && b.slaves.length > 0) {
        this.mastersDown.add(b.brokerName);
      }
      if (b.slaves !== undefined && b.slaves.length > 0) {
        this.slaveAddresses.set(
          b.brokerName,
          b.slaves.map((slave) => slave.address),
        );
      } else {
        this.slaveAddresses.delete(b.brokerName);
      }
    }
    return route;
  }

  /**
   * Asks the name server that answered last, then the next ones in turn while they do not answer
   * (an answer, even an error such as `TOPIC_NOT_FOUND`, is the cluster's answer).
   */
  private async askNameServers<Req, Res>(
    what: string,
    op: WireOperation<Req, Res>,
    request: Req,
  ): Promise<Res> {
    const code = op.code;
    const payload = this.encode(code, op.request, request);
    const failures: string[] = [];
    let lastError: unknown;
    for (let i = 0; i < this.nameServers.length; i++) {
      const index = (this.nameServerIndex + i) % this.nameServers.length;
      const nameServer = this.nameServers[index]!;
      let response: Payload;
      try {
        response = await this.client.request(nameServer, code, payload);
      } catch (error) {
        if (!isRocketError(error) || !error.retriable) throw error;
        failures.push(`${nameServer}: ${error.message}`);
        lastError = error;
        continue;
      }
      this.nameServerIndex = index;
      return op.response.decode(response);
    }
    throw new RocketError(
      'NAME_SERVER_UNAVAILABLE',
      `no name server answered for ${what} (${failures.join('; ')})`,
      { cause: lastError },
    );
  }

  /**
   * The brokers of the cluster by name server (masters and slaves), or, without name servers, the
   * listed brokers as one cluster named `standalone`.
   */
  async clusterInfo(): Promise<ClusterInfo> {
    if (this.nameServers.length > 0) {
      return this.askNameServers('the cluster', WIRE_NAME_SERVER_OPERATIONS.clusterInfo, undefined);
    }
    await this.learnBrokerNames();
    const brokers = [...this.addresses].map(([brokerName, address]) => ({
      brokerName,
      brokerId: 0,
      address,
      topicCount: 0,
      lastUpdateMs: 0,
    }));
    return { clusters: [{ clusterName: 'standalone', brokers }] };
  }

  /** Runs an admin operation (the admin table of `message/operations.ts`) on one broker; what `RocketAdmin` is built on. */
  admin<N extends AdminOperationName>(
    brokerName: string,
    name: N,
    request: AdminOperationRequest<N>,
  ): Promise<AdminOperationResponse<N>> {
    const wire = WIRE_ADMIN_OPERATIONS[name] as WireOperation<
      AdminOperationRequest<N>,
      AdminOperationResponse<N>
    >;
    return this.call(brokerName, wire, request);
  }

  /** Closes every connection; pending calls reject with `BROKER_UNAVAILABLE`. */
  close(): Promise<void> {
    return this.client.close();
  }

  /**
   * The broker's address: known already, or learned from the name servers' cluster view (a broker
   * named before any route mentioned it). Unknown brokers are `BROKER_UNAVAILABLE`.
   */
  private async resolve(brokerName: string): Promise<string> {
    if (!this.addresses.has(brokerName) && this.unnamed.length > 0) await this.learnBrokerNames();
    let address = this.addresses.get(brokerName);
    if (address === undefined && this.nameServers.length > 0) {
      const info = await this.askNameServers(
        `the address of broker "${brokerName}"`,
        WIRE_NAME_SERVER_OPERATIONS.clusterInfo,
        undefined,
      );
      for (const cluster of info.clusters) {
        for (const b of cluster.brokers) if (b.brokerId === 0) this.addBroker(b.brokerName, b.address);
      }
      address = this.addresses.get(brokerName);
    }
    if (address === undefined) {
      throw new RocketError(
        'BROKER_UNAVAILABLE',
        `broker "${brokerName}" has no known address on this transport` +
          (this.nameServers.length > 0 ? ' and no name server knows it' : ''),
      );
    }
    return address;
  }

  /**
   * Asks each broker given by address alone for its name (`GET_BROKER_CLUSTER_INFO`, which a broker
   * answers about itself), so users need not know it. A broker that does not answer fails the
   * call with retriable `BROKER_UNAVAILABLE`, and is asked again next time.
   */
  private learnBrokerNames(): Promise<void> {
    if (this.unnamed.length === 0) return Promise.resolve();
    this.learning ??= (async () => {
      const op = WIRE_NAME_SERVER_OPERATIONS.clusterInfo;
      for (const address of [...this.unnamed]) {
        let info: ClusterInfo;
        try {
          const response = await this.client.request(
            address,
            op.code,
            this.encode(op.code, op.request, undefined),
            { timeoutMs: this.requestTimeoutMs },
          );
          info = op.response.decode(response);
        } catch (error) {
          throw new RocketError(
            'BROKER_UNAVAILABLE',
            `cannot learn the name of the broker at ${address} (${(error as Error).message})`,
            { cause: error },
          );
        }
        const name = info.clusters[0]?.brokers[0]?.brokerName;
        if (name === undefined) {
          throw new RocketError(
            'PROTOCOL_ERROR',
            `the server at ${address} did not name itself: is it a rocketnest broker (not a name server)? Name servers go in nameServers`,
          );
        }
        this.addBroker(name, address);
        this.unnamed = this.unnamed.filter((a) => a !== address);
      }
    })().finally(() => (this.learning = undefined));
    return this.learning;
  }

  private encode<T>(code: number, codec: Codec<T>, value: T): Payload {
    try {
      return codec.encode(value);
    } catch (error) {
      if (isRocketError(error)) throw error;
      throw new RocketError('INVALID_ARGUMENT', `cannot encode ${requestCodeName(code)}`, { cause: error });
    }
  }

  private async call<Req, Res>(
    brokerName: string,
    op: WireOperation<Req, Res>,
    request: Req,
    extraTimeoutMs = 0,
  ): Promise<Res> {
    const address = this.addresses.get(brokerName) ?? (await this.resolve(brokerName));
    return this.callAt(address, op, request, extraTimeoutMs);
  }

  private async callAt<Req, Res>(
    address: string,
    op: WireOperation<Req, Res>,
    request: Req,
    extraTimeoutMs = 0,
  ): Promise<Res> {
    const timeoutMs = this.requestTimeoutMs + extraTimeoutMs;
    if (op.code !== RequestCode.PULL_MESSAGE) {
      const payload = this.encode(op.code, op.request, request);
      return op.response.decode(await this.client.request(address, op.code, payload, { timeoutMs }));
    }
    // Pulls ask for the records form; a broker older than it refuses the bit, and is asked for the
    // views form from then on (`consume-codec.ts`), so clients need not wait for brokers to upgrade.
    const viewsOnly = this.viewsOnlyBrokers.has(address);
    const codec = viewsOnly ? (pullRequestCodec as unknown as Codec<Req>) : op.request;
    try {
      const payload = this.encode(op.code, codec, request);
      return op.response.decode(await this.client.request(address, op.code, payload, { timeoutMs }));
    } catch (error) {
      if (viewsOnly || !refusesRecordsForm(error)) throw error;
      this.viewsOnlyBrokers.add(address);
      return this.callAt(address, op, request, extraTimeoutMs);
    }
  }

  private onServerRequest(code: number, payload: Payload): void {
    switch (code) {
      case RequestCode.CHECK_TRANSACTION_STATE: {
        const check = WIRE_CHANNEL_OPERATIONS.checkTransaction.request.decode(payload);
        for (const c of this.channels.values()) c.checkTransaction?.(check);
        return;
      }
      case RequestCode.NOTIFY_CONSUMER_IDS_CHANGED: {
        const { group } = WIRE_CHANNEL_OPERATIONS.consumerIdsChanged.request.decode(payload);
        for (const c of this.channels.values()) c.consumerIdsChanged?.(group);
        return;
      }
      case RequestCode.RESET_CONSUMER_CLIENT_OFFSET: {
        const notice = WIRE_CHANNEL_OPERATIONS.resetOffset.request.decode(payload);
        for (const c of this.channels.values()) c.resetOffset?.(notice);
        return;
      }
      default:
        throw new RocketError('PROTOCOL_ERROR', `unexpected request ${requestCodeName(code)} from a broker`);
    }
  }
}

/**
 * A broker from before the records form answers a pull request with its bit as a `PROTOCOL_ERROR`
 * naming the unknown presence bits of the pull request (`headerCodec`'s check).
 */
function refusesRecordsForm(error: unknown): boolean {
  return isRocketError(error, 'PROTOCOL_ERROR') && /pullRequest: unknown presence bits/.test(error.message);
}

function commitKey(c: CommitOffsetRequest): string {
  return `${c.group}\u0000${c.topic}\u0000${c.queueId}`;
}
