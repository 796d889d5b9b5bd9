import type { AccessControl } from '../broker/access-control';
import type { Broker } from '../broker/broker';
import { RocketError, isRocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import type { AdminMessage, ClientChannel, TopicInput } from '../message/protocol';
import {
  type Codec,
  OPERATIONS,
  type Payload,
  offsetResetNoticeCodec,
  groupRequestCodec,
  transactionCheckCodec,
} from '../remoting/protocol-codec';
import {
  type RemotingConnection,
  RemotingServer,
  type RemotingServerOptions,
} from '../remoting/remoting-server';
import type { RemotingClientOptions } from '../remoting/remoting-client';
import { RequestCode, isRequestCode, requestCodeName } from '../remoting/request-codes';
import { AdminRequest } from './admin-request';
import { BrokerRegistrar } from './broker-registrar';
import type { RequestAuth } from '../remoting/request-signature';
import { accessDeniedMessage, accessNeedsOf } from './request-access';

export interface BrokerServerOptions extends Omit<RemotingServerOptions, 'handler' | 'secretKeyOf'> {
  /** The broker to serve. The server does not own it: `close()` leaves it open. */
  broker: Broker;
  /** Name servers (`host:port`) to register with. Default none: clients are given the broker's address. (RocketMQ `namesrvAddr`) */
  nameServers?: readonly string[];
  /** Default `DefaultCluster`. (RocketMQ `brokerClusterName`) */
  clusterName?: string;
  /** 0 = master. Default 0. (RocketMQ `brokerId`) */
  brokerId?: number;
  /** The `host:port` name servers hand to clients. Default: the listening address (`0.0.0.0` → `127.0.0.1`). (RocketMQ `brokerIP1`) */
  advertisedAddress?: string;
  /** Registration period, in ms. Default 30 000. (RocketMQ `registerNameServerPeriod`) */
  registerIntervalMs?: number;
  /** A registration with a name server failed; it is retried at the next period. */
  onRegistrationError?: (error: unknown, nameServer: string) => void;
  /** How to reach the name servers: TLS (when they listen with TLS) and timeouts. Default plain TCP. */
  nameServerClient?: Pick<RemotingClientOptions, 'tls' | 'requestTimeoutMs' | 'connectTimeoutMs'>;
  /**
   * Checks every request against this ACL before it runs (RocketMQ `aclEnable=true` with the plain
   * access validator): unsigned requests, unknown keys, bad signatures and missing permissions get
   * a non-retriable `ACCESS_DENIED` (`AccessControl.load` reads the JSON file; docs/security.md).
   * Default none: every request is served.
   */
  acl?: AccessControl;
}

type Handler = (
  header: Buffer,
  body: Buffer,
  connection: RemotingConnection,
  auth: RequestAuth | undefined,
) => Promise<Payload>;

/**
 * Serves a {@link Broker} over TCP: each request frame is decoded with its operation's codec
 * (`OPERATIONS`), the matching broker method is called and its result encoded as the response.
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
    const {
      broker,
      acl,
      nameServers,
      clusterName,
      brokerId,
      advertisedAddress,
      registerIntervalMs,
      onRegistrationError,
      nameServerClient,
      ...rest
    } = options;
    const self = new BrokerServer(broker, undefined, acl);
    self.server = await RemotingServer.listen({
      ...rest,
      ...(acl === undefined ? {} : { secretKeyOf: (accessKey: string) => acl.secretKeyOf(accessKey) }),
      handler: (code, header, body, connection, auth) => self.handle(code, header, body, connection, auth),
    });
    if (nameServers !== undefined) {
      try {
        const listening = self.address();
        const host = listening.host === '0.0.0.0' || listening.host === '::' ? '127.0.0.1' : listening.host;
        self.registrar = new BrokerRegistrar({
          broker,
          nameServers,
          address: advertisedAddress ?? `${host}:${listening.port}`,
          clusterName,
          brokerId,
          registerIntervalMs,
          clock: rest.clock,
          onError: onRegistrationError,
          remoting: nameServerClient,
        });
        self.registration = await self.registrar.start();
      } catch (error) {
        await self.close();
        throw error;
      }
    }
    return self;
  }

  /** How many name servers accepted the first registration (undefined without name servers). */
  get registeredWith(): { registered: number; of: number } | undefined {
    return this.registration;
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
      if (isRocketError(error, 'CLOSED')) {
        throw new RocketError('BROKER_UNAVAILABLE', `broker "${this.broker.brokerName}" is closed`, {
          cause: error,
        });
      }
      throw error;
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
      return codecs.response.encode(await run(request, connection));
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

  private defineHandlers(): void {
    const b = this.broker;
    const C = RequestCode;
    this.on(C.SEND_MESSAGE, OPERATIONS[C.SEND_MESSAGE], (r) => b.send(r));
    this.on(C.PULL_MESSAGE, OPERATIONS[C.PULL_MESSAGE], (r) => b.pull(r));
    this.on(C.QUERY_CONSUMER_OFFSET, OPERATIONS[C.QUERY_CONSUMER_OFFSET], (r) => {
      const offset = b.queryOffset(r.group, r.topic, r.queueId);
      return offset === undefined ? {} : { offset };
    });
    this.on(C.UPDATE_CONSUMER_OFFSET, OPERATIONS[C.UPDATE_CONSUMER_OFFSET], (r) =>
      b.commitOffset(r.group, r.topic, r.queueId, r.offset),
    );
    this.on(C.SEARCH_OFFSET_BY_TIMESTAMP, OPERATIONS[C.SEARCH_OFFSET_BY_TIMESTAMP], (r) => ({
      offset: b.searchOffset(r.topic, r.queueId, r.timestampMs),
    }));
    this.on(C.GET_MAX_OFFSET, OPERATIONS[C.GET_MAX_OFFSET], (r) => ({
      offset: b.maxOffset(r.topic, r.queueId),
    }));
    this.on(C.GET_MIN_OFFSET, OPERATIONS[C.GET_MIN_OFFSET], (r) => ({
      offset: b.minOffset(r.topic, r.queueId),
    }));
    this.on(C.HEART_BEAT, OPERATIONS[C.HEART_BEAT], (r, connection) => {
      // the channel first: the heartbeat's own membership notice already goes to the new member
      this.register(r.clientId, connection);
      b.heartbeat(r);
    });
    this.on(C.UNREGISTER_CLIENT, OPERATIONS[C.UNREGISTER_CLIENT], (r) => {
      this.channels.delete(r.clientId);
      b.unregisterClient(r.clientId);
    });
    this.on(C.CONSUMER_SEND_MSG_BACK, OPERATIONS[C.CONSUMER_SEND_MSG_BACK], (r) => b.sendBack(r));
    this.on(C.END_TRANSACTION, OPERATIONS[C.END_TRANSACTION], (r) => b.endTransaction(r));
    this.on(C.GET_CONSUMER_LIST_BY_GROUP, OPERATIONS[C.GET_CONSUMER_LIST_BY_GROUP], (r) =>
      b.consumerIds(r.group),
    );
    this.on(C.GET_ROUTEINFO_BY_TOPIC, OPERATIONS[C.GET_ROUTEINFO_BY_TOPIC], (r) => {
      if (!b.getTopic(r.topic)) {
        throw new RocketError(
          'TOPIC_NOT_FOUND',
          `broker "${b.brokerName}" does not serve topic "${r.topic}"`,
        );
      }
      return b.topicRoute(r.topic);
    });
    this.on(C.POP_MESSAGE, OPERATIONS[C.POP_MESSAGE], (r) => b.pop(r));
    this.on(C.ACK_MESSAGE, OPERATIONS[C.ACK_MESSAGE], (r) => b.ack(r));
    this.on(C.CHANGE_MESSAGE_INVISIBLE_TIME, OPERATIONS[C.CHANGE_MESSAGE_INVISIBLE_TIME], (r) =>
      b.changeInvisibleTime(r),
    );
    this.on(C.LOCK_BATCH_MQ, OPERATIONS[C.LOCK_BATCH_MQ], (r) => b.lockQueues(r));
    this.on(C.UNLOCK_BATCH_MQ, OPERATIONS[C.UNLOCK_BATCH_MQ], (r) => b.unlockQueues(r));
    this.defineAdminHandlers();
  }

  /** Admin operations (`rocketnest admin`): JSON requests, each field checked before use. */
  private defineAdminHandlers(): void {
    const b = this.broker;
    const C = RequestCode;
    this.on(C.ADMIN_UPDATE_TOPIC, OPERATIONS[C.ADMIN_UPDATE_TOPIC], (raw) => {
      const r = new AdminRequest('update topic', raw);
      const input: TopicInput = { topic: r.str('topic') };
      const queueCount = r.optInt('queueCount', 1);
      const readQueueCount = r.optInt('readQueueCount', 1);
      const writeQueueCount = r.optInt('writeQueueCount', 1);
      const permission = r.optInt('permission');
      const fifo = r.optBool('fifo');
      if (queueCount !== undefined) input.queueCount = queueCount;
      if (readQueueCount !== undefined) input.readQueueCount = readQueueCount;
      if (writeQueueCount !== undefined) input.writeQueueCount = writeQueueCount;
      if (permission !== undefined) input.permission = permission;
      if (fifo !== undefined) input.fifo = fifo;
      return b.createTopic(input);
    });
    this.on(C.ADMIN_LIST_TOPICS, OPERATIONS[C.ADMIN_LIST_TOPICS], () => b.listTopics());
    this.on(C.ADMIN_CONSUME_STATS, OPERATIONS[C.ADMIN_CONSUME_STATS], (raw) => {
      const r = new AdminRequest('consume stats', raw);
      return b.consumeStats(r.str('group'), r.optStr('topic'));
    });
    this.on(C.ADMIN_VIEW_MESSAGE, OPERATIONS[C.ADMIN_VIEW_MESSAGE], (raw) => {
      const msgId = new AdminRequest('view message', raw).str('msgId');
      let view: MessageView | undefined;
      try {
        view = b.viewMessage(msgId);
      } catch (error) {
        // a malformed id names no message of any broker
        if (!isRocketError(error, 'INVALID_ARGUMENT')) throw error;
      }
      return view ? adminMessage(b.brokerName, view) : null;
    });
    this.on(C.ADMIN_QUERY_MESSAGE_BY_KEY, OPERATIONS[C.ADMIN_QUERY_MESSAGE_BY_KEY], (raw) => {
      const r = new AdminRequest('query message by key', raw);
      const maxCount = Math.min(r.optInt('maxCount', 1) ?? 32, MAX_ADMIN_QUERY_RESULTS);
      return b
        .queryByKey(r.str('topic'), r.str('key'), undefined, undefined, maxCount)
        .map((view) => adminMessage(b.brokerName, view));
    });
    this.on(C.ADMIN_RESET_OFFSET, OPERATIONS[C.ADMIN_RESET_OFFSET], (raw) => {
      const r = new AdminRequest('reset offset', raw);
      return b.resetOffsetByTime(r.str('group'), r.str('topic'), r.int('timestampMs'));
    });
    this.on(C.ADMIN_RESEND_DLQ, OPERATIONS[C.ADMIN_RESEND_DLQ], (raw) => {
      const r = new AdminRequest('resend dead letter', raw);
      return b.resendDeadLetter(r.str('group'), r.str('msgId'));
    });
  }

  /** Makes `connection` the way the broker reaches `clientId` (until another heartbeat moves it). */
  private register(clientId: string, connection: RemotingConnection): void {
    const current = this.channels.get(clientId);
    if (current?.connection === connection) return;
    const channel: ClientChannel = {
      checkTransaction: (check) =>
        void connection.sendOneWay(RequestCode.CHECK_TRANSACTION_STATE, transactionCheckCodec.encode(check)),
      consumerIdsChanged: (group) =>
        void connection.sendOneWay(
          RequestCode.NOTIFY_CONSUMER_IDS_CHANGED,
          groupRequestCodec.encode({ group }),
        ),
      resetOffset: (notice) =>
        void connection.sendOneWay(
          RequestCode.RESET_CONSUMER_CLIENT_OFFSET,
          offsetResetNoticeCodec.encode(notice),
        ),
    };
    this.channels.set(clientId, { channel, connection });
    this.broker.registerChannel(clientId, channel);
    connection.onClose(() => {
      if (this.channels.get(clientId)?.channel !== channel) return;
      this.channels.delete(clientId);
      try {
        this.broker.unregisterClient(clientId, 'disconnect');
      } catch {
        // a closed broker has nobody left to tell
      }
    });
  }
}

/** Most messages one admin query by key returns. */
const MAX_ADMIN_QUERY_RESULTS = 256;

function adminMessage(brokerName: string, view: MessageView): AdminMessage {
  const out: AdminMessage = {
    msgId: view.msgId,
    brokerName,
    topic: view.topic,
    queueId: view.queueId,
    queueOffset: view.queueOffset,
    keys: [...view.keys],
    properties: { ...view.properties },
    bornTimestampMs: view.bornTimestampMs,
    bornHost: view.bornHost,
    storeTimestampMs: view.storeTimestampMs,
    reconsumeTimes: view.reconsumeTimes,
    bodyBase64: view.body.toString('base64'),
  };
  if (view.tag !== undefined) out.tag = view.tag;
  if (view.messageGroup !== undefined) out.messageGroup = view.messageGroup;
  return out;
}
