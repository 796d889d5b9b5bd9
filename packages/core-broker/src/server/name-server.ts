import type { AccessControl } from '../broker/access-control';
import { type Clock, type Timer, systemClock } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import { intOption } from '../common/options';
import { DEFAULT_BROKER_EXPIRY_MS, RouteTable, parseBrokerRegistration } from '../namesrv/route-table';
import { WIRE_NAME_SERVER_OPERATIONS } from '../remoting/operation-codecs';
import type { Codec, Payload } from '../remoting/codec';
import {
  type RemotingConnection,
  RemotingServer,
  type RemotingServerOptions,
} from '../remoting/remoting-server';
import { RequestCode, isRequestCode, requestCodeName } from '../remoting/request-codes';
import type { RequestAuth } from '../remoting/request-signature';

/** RocketMQ's name server port. */
export const DEFAULT_NAME_SERVER_PORT = 9876;
/**
 * Largest frame a name server accepts, in bytes: 4 MiB. Name servers take registrations (a topic
 * list) and small queries, never messages, so RocketMQ's 16 MiB remoting default would only let
 * unauthenticated connections pin memory. A registration of about 40 000 topics fits.
 */
export const DEFAULT_NAME_SERVER_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** How often silent brokers are looked for: 5 s (RocketMQ `scanNotActiveBrokerInterval`). */
export const DEFAULT_BROKER_SCAN_INTERVAL_MS = 5_000;

/** What a name server reports as brokers come and go (logs, tests). */
export type NameServerEvent =
  | { type: 'broker.registered'; brokerName: string; address: string; topicCount: number }
  | { type: 'broker.unregistered'; brokerName: string }
  | { type: 'broker.dropped'; brokerName: string; reason: 'expired' | 'connection-closed' }
  /** A registration refused: no broker credential (ACL), or the name of a live broker at another address. */
  | { type: 'broker.refused'; brokerName: string; address: string; reason: string };

export interface NameServerOptions extends Omit<RemotingServerOptions, 'handler' | 'secretKeyOf'> {
  /** A broker silent this long leaves the routes, in ms. Default {@link DEFAULT_BROKER_EXPIRY_MS}. (RocketMQ `BROKER_CHANNEL_EXPIRED_TIME`) */
  brokerExpiryMs?: number;
  /** Period of the silent-broker scan, in ms. Default {@link DEFAULT_BROKER_SCAN_INTERVAL_MS}. (RocketMQ `scanNotActiveBrokerInterval`) */
  brokerScanIntervalMs?: number;
  onEvent?: (event: NameServerEvent) => void;
  /**
   * Broker credentials: with an ACL, a registration or unregistration must be signed by an admin
   * account of it (the broker's `nameServerClient.credentials`, `rocketnest broker
   * --namesrv-access-key`) or come from one of its white-listed addresses; anything else is
   * `ACCESS_DENIED`. Route and cluster queries stay open to every client, as in RocketMQ. The same
   * ACL file as the brokers' does (docs/security.md). Default none: any process that reaches the
   * name server may register brokers, so keep it on a network only brokers and clients reach.
   */
  acl?: AccessControl;
}

/** A name server's own options, checked, with defaults filled in (the listening ones are the remoting server's). */
export interface ResolvedNameServerOptions {
  readonly brokerExpiryMs: number;
  readonly brokerScanIntervalMs: number;
  readonly clock: Clock;
  readonly onEvent: ((event: NameServerEvent) => void) | undefined;
  readonly acl: AccessControl | undefined;
}

/** Checks a name server's own options (`INVALID_OPTION` naming the bad one) and freezes them. */
export function resolveNameServerOptions(options: NameServerOptions = {}): ResolvedNameServerOptions {
  return Object.freeze({
    brokerExpiryMs: intOption(
      'name server',
      'brokerExpiryMs',
      options.brokerExpiryMs,
      DEFAULT_BROKER_EXPIRY_MS,
      1,
    ),
    brokerScanIntervalMs: intOption(
      'name server',
      'brokerScanIntervalMs',
      options.brokerScanIntervalMs,
      DEFAULT_BROKER_SCAN_INTERVAL_MS,
      1,
    ),
    clock: options.clock ?? systemClock,
    onEvent: options.onEvent,
    acl: options.acl,
  });
}

type Handler = (
  header: Buffer,
  body: Buffer,
  connection: RemotingConnection,
  auth: RequestAuth | undefined,
) => Payload;

/**
 * A name server (RocketMQ `NamesrvController`): brokers register with it and refresh their
 * registration every 30 s; clients ask it for topic routes. Name servers do not talk to each
 * other: every broker registers with every one, so any of them can answer any client.
 *
 * A broker leaves the routes when it unregisters (clean shutdown), when the connection its latest
 * registration came on closes (a killed broker: RocketMQ's `BrokerHousekeepingService`), or when
 * it has been silent for `brokerExpiryMs`.
 */
export class NameServer {
  private readonly table: RouteTable;
  private readonly handlers = new Map<number, Handler>();
  private readonly clock: Clock;
  private readonly scanIntervalMs: number;
  private readonly onEvent: (event: NameServerEvent) => void;
  private readonly acl: AccessControl | undefined;
  private server: RemotingServer | undefined;
  private scanTimer: Timer | undefined;
  private closed = false;

  private constructor(options: ResolvedNameServerOptions) {
    this.clock = options.clock;
    this.acl = options.acl;
    this.table = new RouteTable(options.brokerExpiryMs);
    this.scanIntervalMs = options.brokerScanIntervalMs;
    const onEvent = options.onEvent;
    this.onEvent = (event) => {
      try {
        onEvent?.(event);
      } catch {
        // instrumentation never breaks the name server
      }
    };
    this.defineHandlers();
  }

  /** Listens on `host:port` (default 127.0.0.1:9876; port 0 picks a free one, see `address()`). */
  static async start(options: NameServerOptions = {}): Promise<NameServer> {
    const self = new NameServer(resolveNameServerOptions(options));
    const { brokerExpiryMs: _e, brokerScanIntervalMs: _s, onEvent: _o, acl, ...remoting } = options;
    self.server = await RemotingServer.listen({
      host: '127.0.0.1',
      port: DEFAULT_NAME_SERVER_PORT,
      maxFrameBytes: DEFAULT_NAME_SERVER_MAX_FRAME_BYTES,
      ...remoting,
      ...(acl === undefined
        ? {}
        : {
            secretKeyOf: (accessKey: string) => acl.secretKeyOf(accessKey),
            isTrustedAddress: (ip: string) => acl.isWhiteListed(ip),
          }),
      handler: async (code, header, body, connection, auth) =>
        self.handle(code, header, body, connection, auth),
    });
    self.armScan();
    return self;
  }

  address(): { host: string; port: number } {
    return this.remoting.address();
  }

  /** The routing state (live brokers, routes); read-only use. */
  get routes(): Pick<RouteTable, 'topicRoute' | 'topics' | 'clusterInfo' | 'size'> {
    return this.table;
  }

  get remoting(): RemotingServer {
    if (!this.server) throw new RocketError('CLOSED', 'the name server is not listening');
    return this.server;
  }

  /** Stops the scan, stops accepting, closes every connection. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.scanTimer?.cancel();
    await this.server?.close();
  }

  private armScan(): void {
    this.scanTimer = this.clock.setTimer(this.scanIntervalMs, () => {
      if (this.closed) return;
      for (const brokerName of this.table.expire(this.clock.now())) {
        this.onEvent({ type: 'broker.dropped', brokerName, reason: 'expired' });
      }
      this.armScan();
    });
  }

  private handle(
    code: number,
    header: Buffer,
    body: Buffer,
    connection: RemotingConnection,
    auth: RequestAuth | undefined,
  ): Payload {
    const handler = this.handlers.get(code);
    if (!handler) {
      throw new RocketError(
        'PROTOCOL_ERROR',
        isRequestCode(code)
          ? `request code ${requestCodeName(code)} is not served by a name server`
          : `unknown request code ${code}`,
      );
    }
    return handler(header, body, connection, auth);
  }

  private on<Req, Res>(
    code: number,
    codecs: { request: Codec<Req>; response: Codec<Res> },
    run: (request: Req, connection: RemotingConnection) => Res,
    brokerOnly = false,
  ): void {
    this.handlers.set(code, (header, body, connection, auth) => {
      const request = codecs.request.decode({ header, body });
      try {
        if (brokerOnly) this.authorizeBroker(code, connection, auth);
        return codecs.response.encode(run(request, connection));
      } catch (error) {
        if (isRocketError(error, 'ACCESS_DENIED') || isRocketError(error, 'BROKER_NAME_CONFLICT')) {
          const fields = (typeof request === 'object' && request !== null ? request : {}) as Record<
            string,
            unknown
          >;
          this.onEvent({
            type: 'broker.refused',
            brokerName: String(fields.brokerName ?? '?'),
            address: typeof fields.address === 'string' ? fields.address : connection.remoteAddress,
            reason: (error as Error).message,
          });
        }
        throw error;
      }
    });
  }

  /** With an ACL, throws `ACCESS_DENIED` unless a broker credential (an admin account) signed the request. */
  private authorizeBroker(code: number, connection: RemotingConnection, auth: RequestAuth | undefined): void {
    if (this.acl === undefined) return;
    const at = connection.remoteAddress.lastIndexOf(':');
    const remoteIp = at < 0 ? connection.remoteAddress : connection.remoteAddress.slice(0, at);
    if (this.acl.authorize({ remoteIp, auth, needs: [{ kind: 'admin' }] }).allowed) return;
    throw new RocketError(
      'ACCESS_DENIED',
      `${requestCodeName(code)} needs a broker credential: a request signed by an admin account of the name server's ACL`,
    );
  }

  private defineHandlers(): void {
    const C = RequestCode;
    const sessions = new WeakSet<RemotingConnection>();
    this.on(
      C.REGISTER_BROKER,
      WIRE_NAME_SERVER_OPERATIONS.registerBroker,
      (raw, connection) => {
        const registration = parseBrokerRegistration(raw);
        const fresh = this.table.register(registration, this.clock.now(), connection);
        if (!sessions.has(connection)) {
          sessions.add(connection);
          connection.onClose(() => {
            for (const brokerName of this.table.dropSession(connection)) {
              this.onEvent({ type: 'broker.dropped', brokerName, reason: 'connection-closed' });
            }
          });
        }
        if (fresh) {
          this.onEvent({
            type: 'broker.registered',
            brokerName: registration.brokerName,
            address: registration.address,
            topicCount: registration.topics.length,
          });
        }
      },
      true,
    );
    this.on(
      C.UNREGISTER_BROKER,
      WIRE_NAME_SERVER_OPERATIONS.unregisterBroker,
      (r, connection) => {
        if (this.table.unregister(r.brokerName, r.brokerId, connection)) {
          this.onEvent({ type: 'broker.unregistered', brokerName: r.brokerName });
        }
      },
      true,
    );
    this.on(C.GET_ROUTEINFO_BY_TOPIC, WIRE_NAME_SERVER_OPERATIONS.topicRoute, (r) =>
      this.table.topicRoute(r.topic),
    );
    this.on(C.GET_BROKER_CLUSTER_INFO, WIRE_NAME_SERVER_OPERATIONS.clusterInfo, () =>
      this.table.clusterInfo(),
    );
  }
}
