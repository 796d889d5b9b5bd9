import type { AccessControl } from '../broker/access-control';
import type { Broker } from '../broker/broker';
import { RocketError } from '../common/errors';
import {
  ADMIN_OPERATION_NAMES,
  OPERATION_NAMES,
  type OperationName,
  type OperationRequest,
  type OperationResponse,
  unavailableIfClosed,
} from '../message/operations';
import type { ClientChannel } from '../message/protocol';
import {
  WIRE_ADMIN_OPERATIONS,
  WIRE_CHANNEL_OPERATIONS,
  WIRE_NAME_SERVER_OPERATIONS,
  WIRE_OPERATIONS,
  type WireOperation,
} from '../remoting/operation-codecs';
import type { Codec, Payload } from '../remoting/codec';
import {
  type RemotingConnection,
  RemotingServer,
  type RemotingServerOptions,
} from '../remoting/remoting-server';
import { type RemotingClientOptions, parseAddress } from '../remoting/remoting-client';
import { RequestCode, isRequestCode, requestCodeName } from '../remoting/request-codes';
import type { RequestAuth } from '../remoting/request-signature';
import { ADMIN_HANDLERS } from './admin-operations';
import { BrokerRegistrar, DEFAULT_CLUSTER_NAME } from './broker-registrar';
import { accessDeniedMessage, accessNeedsOf } from './request-access';

export interface BrokerServerOptions extends Omit<RemotingServerOptions, 'handler' | 'secretKeyOf'> {
  /** The broker to serve. The server does not own it: `close()` leaves it open. */
  broker: Broker;
  /** Name servers (`host:port`) to register with. Default none: clients are given the broker's address. (RocketMQ `namesrvAddr`) */
  nameServers?: readonly string[];
  /** Default `DEFAULT_CLUSTER_NAME` (`broker-registrar.ts`). (RocketMQ `brokerClusterName`) */
  clusterName?: string;
  /** 0 (`MASTER_BROKER_ID` (`broker-registrar.ts`)) = master, the default. (RocketMQ `brokerId`) */
  brokerId?: number;
  /** The `host:port` name servers hand to clients. Default: the listening address (`0.0.0.0` → `127.0.0.1`). (RocketMQ `brokerIP1`) */
  advertisedAddress?: string;
  /**
   * `host:port` of this broker's RocketMQ 5 gRPC endpoint (`GrpcServer`), registered with the name
   * servers so that each broker's gRPC port appears in the others' gRPC routes. Default none.
   */
  grpcAddress?: string;
  /** A master's HA address to register, read at each registration (see `BrokerRegistrarOptions.haAddress`). */
  haAddress?: () => string | undefined;
  /** Registration period, in ms. Default `DEFAULT_REGISTER_INTERVAL_MS` (`broker-registrar.ts`). (RocketMQ `registerNameServerPeriod`) */
  registerIntervalMs?: number;
  /** A registration with a name server failed; it is retried at the next period. */
  onRegistrationError?: (error: unknown, nameServer: string) => void;
  /**
   * How to reach the name servers: TLS (when they listen with TLS), timeouts, and the broker
   * credential that signs registrations for name servers with an ACL. Default plain TCP, unsigned.
   */
  nameServerClient?: Pick<
    RemotingClientOptions,
    'tls' | 'requestTimeoutMs' | 'connectTimeoutMs' | 'credentials'
  >;
  /**
   * Checks every request against this ACL before it runs (RocketMQ `aclEnable=true` with the plain
   * access validator): unsigned requests, unknown keys, bad signatures and missing permissions get
   * a non-retriable `ACCESS_DENIED` (`AccessControl.load` reads the JSON file; docs/security.md).
   * Default none: every request is served.
   */
  acl?: AccessControl;
}

/** Listening addresses that are no address a client can use: name servers get the loopback instead. */
const WILDCARD_HOSTS: ReadonlySet<string> = new Set(['0.0.0.0', '::']);
const LOOPBACK_HOST = '127.0.0.1';

/** A broker server's options, sorted by who uses them, checked and frozen. */
export interface ResolvedBrokerServerOptions {
  readonly broker: Broker;
  readonly acl: AccessControl | undefined;
  /** What the registrar needs (checked again by it, with the listening address); none without name servers. */
  readonly registration:
    | Readonly<{
        nameServers: readonly string[];
        advertisedAddress: string | undefined;
        grpcAddress: string | undefined;
        haAddress: (() => string | undefined) | undefined;
        clusterName: string | undefined;
        brokerId: number | undefined;
        registerIntervalMs: number | undefined;
        onError: ((error: unknown, nameServer: string) => void) | undefined;
        remoting: BrokerServerOptions['nameServerClient'];
      }>
    | undefined;
  /** What the broker tells a client that asks it for the cluster info (its name comes from the broker). */
  readonly identity: Readonly<{ clusterName: string; brokerId: number }>;
  /** The listening options: the remoting server resolves them. */
  readonly remoting: Readonly<Omit<RemotingServerOptions, 'handler' | 'secretKeyOf'>>;
}

/**
 * Sorts a broker server's options into the broker's, the registrar's and the remoting server's,
 * checking its own (the broker, the advertised address) before anything listens; frozen.
 */
export function resolveBrokerServerOptions(options: BrokerServerOptions): ResolvedBrokerServerOptions {
  const {
    broker,
    acl,
    nameServers,
    clusterName,
    brokerId,
    advertisedAddress,
    grpcAddress,
    haAddress,
    registerIntervalMs,
    onRegistrationError,
    nameServerClient,
    ...remoting
  } = options;
  if (broker === undefined || broker === null) {
    throw new RocketError('INVALID_OPTION', 'BrokerServer option broker is required: the broker to serve');
  }
  if (advertisedAddress !== undefined) parseAddress(advertisedAddress);
  const registration =
    nameServers === undefined
      ? undefined
      : Object.freeze({
          nameServers,
          advertisedAddress,
          grpcAddress,
          haAddress,
          clusterName,
          brokerId,
          registerIntervalMs,
          onError: onRegistrationError,
          remoting: nameServerClient,
        });
  const identity = Object.freeze({
    clusterName: clusterName ?? DEFAULT_CLUSTER_NAME,
    brokerId: brokerId ?? 0,
  });
  return Object.freeze({ broker, acl, registration, identity, remoting: Object.freeze(remoting) });
}

/** Runs in the TCP front end before a row's broker method (the connection is TCP's own). */
type ConnectionHook<Req> = (request: Req, connection: RemotingConnection) => void;

type Handler = (
  header: Buffer,
  body: Buffer,
  connection: RemotingConnection,
  auth: RequestAuth | undefined,
) => Promise<Payload>;

/**
 * Serves a {@link Broker} over TCP. The handlers are derived from the operation table
 * (`message/operations.ts`): for each row, a request frame of the row's code is decoded with its
 * codec (`WIRE_OPERATIONS`), the broker method of the row's name is called and its result encoded
 * as the response; admin rows go through `ADMIN_HANDLERS`.
 * Broker errors travel as error responses with their code, message and retriable flag; a closed
 * broker answers `BROKER_UNAVAILABLE` (retriable), as `InProcessTransport` does.
 *
 * A heartbeat registers its connection as the client's `ClientChannel`, so transaction
 * check-backs, consumer-ids-changed and reset-offset notices reach the client as one-way requests
 * on that connection. When the connection closes, the clients it registered leave the broker
 * (RocketMQ's `ClientHousekeepingService`); their next heartbeat on a new connection brings them back.
 *
 * With an `acl`, each request is decoded and then checked against it before the broker sees it
 * (`accessNeedsOf` says what each code needs); a refusal is a non-retriable `ACCESS_DENIED`.
 */
export class BrokerServer {
  private readonly handlers = new Map<number, Handler>();
  /** clientId → the channel its latest heartbeat registered, and that channel's connection. */
  private readonly channels = new Map<string, { channel: ClientChannel; connection: RemotingConnection }>();

  private registrar: BrokerRegistrar | undefined;
  private identity: ResolvedBrokerServerOptions['identity'] = {
    clusterName: DEFAULT_CLUSTER_NAME,
    brokerId: 0,
  };
  private registration: { registered: number; of: number } | undefined;

  private constructor(
    readonly broker: Broker,
    private server: RemotingServer | undefined,
    private readonly acl: AccessControl | undefined,
  ) {
    this.defineHandlers();
  }

  /**
   * Listens on `host:port` (port 0 picks a free one; see `address()`), then registers with the
   * name servers, if any (see `registration`: a name server that is down does not stop the start).
   */
  static async start(options: BrokerServerOptions): Promise<BrokerServer> {
    const { broker, acl, registration, identity, remoting: rest } = resolveBrokerServerOptions(options);
    const self = new BrokerServer(broker, undefined, acl);
    self.identity = identity;
    self.server = await RemotingServer.listen({
      ...rest,
      ...(acl === undefined
        ? {}
        : {
            secretKeyOf: (accessKey: string) => acl.secretKeyOf(accessKey),
            isTrustedAddress: (ip: string) => acl.isWhiteListed(ip),
          }),
      handler: (code, header, body, connection, auth) => self.handle(code, header, body, connection, auth),
    });
    if (registration !== undefined) {
      try {
        const listening = self.address();
        const host = WILDCARD_HOSTS.has(listening.host) ? LOOPBACK_HOST : listening.host;
        const { advertisedAddress, ...registrar } = registration;
        self.registrar = new BrokerRegistrar({
          broker,
          ...registrar,
          address: advertisedAddress ?? `${host}:${listening.port}`,
          clock: rest.clock,
        });
        self.registration = await self.registrar.start();
      } catch (error) {
        await self.close();
        throw error;
      }
    }
    return self;
  }

  /** Serves and registers under another broker id from now on (a slave promoted to master takes 0). */
  async changeBrokerId(brokerId: number): Promise<void> {
    this.identity = Object.freeze({ ...this.identity, brokerId });
    await this.registrar?.changeBrokerId(brokerId);
  }

  /** How many name servers accepted the first registration (undefined without name servers). */
  get registeredWith(): { registered: number; of: number } | undefined {
    return this.registration;
  }

  /** How many name servers accepted the latest periodic registration (undefined without name servers). */
  get registeredNow(): { registered: number; of: number } | undefined {
    return this.registrar?.status ?? this.registration;
  }

  address(): { host: string; port: number } {
    return this.remoting.address();
  }

  /** The underlying remoting server (connections and their stats). */
  get remoting(): RemotingServer {
    return this.server!;
  }

  /**
   * Unregisters from the name servers, stops accepting, finishes in-flight requests, closes every
   * connection. The broker stays open.
   */
  async close(): Promise<void> {
    await this.registrar?.close();
    await this.remoting.close();
  }

  private async handle(
    code: number,
    header: Buffer,
    body: Buffer,
    connection: RemotingConnection,
    auth: RequestAuth | undefined,
  ): Promise<Payload> {
    const handler = this.handlers.get(code);
    if (!handler) {
      throw new RocketError(
        'PROTOCOL_ERROR',
        isRequestCode(code)
          ? `request code ${requestCodeName(code)} is not served by a broker`
          : `unknown request code ${code}`,
      );
    }
    try {
      return await handler(header, body, connection, auth);
    } catch (error) {
      throw unavailableIfClosed(error, this.broker.brokerName);
    }
  }

  private on<Req, Res>(
    code: number,
    codecs: { request: Codec<Req>; response: Codec<Res> },
    run: (request: Req, connection: RemotingConnection) => Res | Promise<Res>,
  ): void {
    this.handlers.set(code, async (header, body, connection, auth) => {
      const request = codecs.request.decode({ header, body });
      if (this.acl !== undefined) this.authorize(this.acl, code, request, connection, auth);
      const response = await run(request, connection);
      const { response: codec } = codecs;
      return codec.encodeParts !== undefined ? codec.encodeParts(response) : codec.encode(response);
    });
  }

  /** Throws `ACCESS_DENIED` unless the ACL lets this request run; one message for every reason. */
  private authorize(
    acl: AccessControl,
    code: number,
    request: unknown,
    connection: RemotingConnection,
    auth: RequestAuth | undefined,
  ): void {
    const needs = accessNeedsOf(code, request);
    const at = connection.remoteAddress.lastIndexOf(':');
    const remoteIp = at < 0 ? connection.remoteAddress : connection.remoteAddress.slice(0, at);
    if (acl.authorize({ remoteIp, auth, needs }).allowed) return;
    throw new RocketError('ACCESS_DENIED', accessDeniedMessage(code, needs));
  }

  /** One handler per row of the operation table and of the admin table. */
  private defineHandlers(): void {
    for (const name of OPERATION_NAMES) this.defineOperation(name);
    for (const name of ADMIN_OPERATION_NAMES) {
      const serve = ADMIN_HANDLERS[name] as (broker: Broker, raw: unknown) => unknown;
      const wire = WIRE_ADMIN_OPERATIONS[name] as unknown as WireOperation<unknown, unknown>;
      this.on(wire.code, wire, (raw) => serve(this.broker, raw));
    }
    // A broker answers the name server's cluster query about itself, so a client given only its
    // address learns its name (TcpTransport with brokers: ['host:port']).
    this.on(RequestCode.GET_BROKER_CLUSTER_INFO, WIRE_NAME_SERVER_OPERATIONS.clusterInfo, () => {
      const listening = this.address();
      return {
        clusters: [
          {
            clusterName: this.identity.clusterName,
            brokers: [
              {
                brokerName: this.broker.brokerName,
                brokerId: this.identity.brokerId,
                address: `${listening.host}:${listening.port}`,
                topicCount: this.broker.listTopics().length,
                lastUpdateMs: 0,
              },
            ],
          },
        ],
      };
    });
  }

  private defineOperation<N extends OperationName>(name: N): void {
    const wire = WIRE_OPERATIONS[name] as WireOperation<OperationRequest<N>, OperationResponse<N>>;
    const before = this.connectionHooks[name] as ConnectionHook<OperationRequest<N>> | undefined;
    this.on(wire.code, wire, (request, connection) => {
      before?.(request, connection);
      // looked up per call, as a direct call would be (a test may replace the method)
      const method = this.broker[name] as (request: OperationRequest<N>) => OperationResponse<N>;
      return method.call(this.broker, request);
    });
  }

  /** What the TCP front end does with a connection before the broker sees the request. */
  private readonly connectionHooks: { [N in OperationName]?: ConnectionHook<OperationRequest<N>> } = {
    // the channel first: the heartbeat's own membership notice already goes to the new member
    heartbeat: (r, connection) => this.register(r.clientId, connection),
    unregisterClient: (r) => void this.channels.delete(r.clientId),
  };

  /** Makes `connection` the way the broker reaches `clientId` (until another heartbeat moves it). */
  private register(clientId: string, connection: RemotingConnection): void {
    const current = this.channels.get(clientId);
    if (current?.connection === connection) return;
    const send = <T>(op: { code: number; request: Codec<T> }, value: T) =>
      connection.sendOneWay(op.code, op.request.encode(value));
    const channel: ClientChannel = {
      checkTransaction: (check) => void send(WIRE_CHANNEL_OPERATIONS.checkTransaction, check),
      consumerIdsChanged: (group) => void send(WIRE_CHANNEL_OPERATIONS.consumerIdsChanged, { group }),
      resetOffset: (notice) => void send(WIRE_CHANNEL_OPERATIONS.resetOffset, notice),
    };
    this.channels.set(clientId, { channel, connection });
    this.broker.registerChannel(clientId, channel);
    connection.onClose(() => {
      if (this.channels.get(clientId)?.channel !== channel) return;
      this.channels.delete(clientId);
      try {
        this.broker.unregisterClient({ clientId }, 'disconnect');
      } catch {
        // a closed broker has nobody left to tell
      }
    });
  }
}
