import type { Broker } from '../broker/broker';
import { decodeReceiptHandle } from '../broker/receipt-handle';
import { RETRY_TOPIC_PREFIX } from '../message/validation';
import { Permission, type TopicConfig } from '../message/protocol';
import {
  AddressScheme,
  type AckMessageRequest,
  type AckMessageResponse,
  type ChangeInvisibleDurationRequest,
  type ChangeInvisibleDurationResponse,
  type Endpoints,
  type EndTransactionRequest,
  type ForwardMessageToDeadLetterQueueRequest,
  type HeartbeatRequest,
  type MessageQueue,
  type NotifyClientTerminationRequest,
  PermissionV2,
  type QueryAssignmentRequest,
  type QueryAssignmentResponse,
  type QueryRouteRequest,
  type QueryRouteResponse,
  type ReceiveMessageRequest,
  type ReceiveMessageResponse,
  type RecallMessageRequest,
  type RecallMessageResponse,
  type SendMessageRequest,
  type SendMessageResponse,
  type SendResultEntry,
  type StatusResponse,
  TransactionResolution,
  TransactionSource,
  durationMs,
  msTimestamp,
} from '../rocketmq5/codec';
import {
  type GrpcReceiptHandle,
  decodeGrpcReceiptHandle,
  encodeGrpcReceiptHandle,
} from '../rocketmq5/receipt-handle';
import { Code, OK_STATUS, type Status, StatusFailure } from '../rocketmq5/status';
import {
  acceptedTypes,
  decodeRecallHandle,
  encodeRecallHandle,
  groupOf,
  inboundMessage,
  outboundMessage,
  statusOfError,
  topicOf,
} from './grpc-convert';
import type { GrpcClusterRoutes } from './grpc-cluster-routes';
import { HandleRenewal } from './grpc-renewal';
import { ClientSessions, MAX_LONG_POLLING_MS, filterOf } from './grpc-sessions';

/** Shortest invisible time a receive may ask for (RocketMQ proxy `minInvisibleTimeMillsForRecv`). */
export const MIN_INVISIBLE_TIME_MS = 10_000;
/** Longest invisible time (RocketMQ proxy `maxInvisibleTimeMills`). */
export const MAX_INVISIBLE_TIME_MS = 12 * 3600_000;
/**
 * Invisible time of a receive with `auto_renew` (push consumers; RocketMQ proxy
 * `defaultInvisibleTimeMills`), renewed while the consumer handles the message (grpc-renewal.ts).
 */
export const AUTO_RENEW_INVISIBLE_TIME_MS = 60_000;
/** Most messages one receive hands out (RocketMQ `MAX_MSG_NUMS_FOR_POP_REQUEST`). */
export const MAX_RECEIVE_BATCH = 32;
/** Time kept back from a receive's deadline for the answer to reach the client. */
export const RECEIVE_DEADLINE_MARGIN_MS = 500;

/** What the transport knows of a call. */
export interface CallContext {
  clientId: string;
  /** Epoch ms by which the client wants its answer; `Infinity` without a deadline. */
  deadlineMs: number;
  /** `host:port` of the client's connection. */
  peer: string;
}

/**
 * The MessagingService RPCs, mapped onto a {@link Broker}'s own operations (send, pop, ack,
 * change invisible time, send back, end transaction, membership): nothing here stores, filters or
 * redelivers messages itself. Each method answers with a RocketMQ 5 `Status`, never by throwing.
 */
export class Messaging {
  private readonly renewal: HandleRenewal;

  constructor(
    private readonly broker: Broker,
    readonly sessions: ClientSessions,
    private readonly limits: { maxBodyBytes: number },
    /** In a cluster: the name servers' view, so routes list every broker with its own gRPC endpoint. */
    private readonly clusterRoutes?: GrpcClusterRoutes,
  ) {
    // a client is there while its Telemetry stream is open (the official clients keep one open from
    // start to shutdown): a crashed consumer's messages are no longer renewed
    this.renewal = new HandleRenewal(broker, (clientId) => sessions.get(clientId)?.write !== undefined);
  }

  /** Stops renewing invisible times (the server is closing). */
  close(): void {
    this.renewal.close();
  }

  private get now(): number {
    return this.broker.options.clock.now();
  }

  async queryRoute(request: QueryRouteRequest): Promise<QueryRouteResponse> {
    try {
      const topic = topicOf(request.topic, true);
      const queues: MessageQueue[] = [];
      for (const b of await this.routeBrokers(topic, accessPoint(request.endpoints))) {
        const count = Math.max(b.config.readQueueCount, b.config.writeQueueCount);
        for (let id = 0; id < count; id++) queues.push(this.queue(b.config, id, b.endpoints, b.brokerName));
      }
      return { status: OK_STATUS, messageQueues: queues };
    } catch (error) {
      return { status: statusOfError(error), messageQueues: [] };
    }
  }

  /**
   * The brokers serving `topic`, each with the gRPC endpoints clients reach it at. Standalone: this
   * broker, at the endpoints the client dialled. In a cluster: every broker the name servers know
   * with the topic and a gRPC endpoint (Apache's proxy lists every broker of the route too); this
   * broker alone when the name servers cannot be reached or do not know the topic yet.
   */
  private async routeBrokers(
    topic: string,
    dialled: Endpoints,
  ): Promise<Array<{ brokerName: string; config: TopicConfig; endpoints: Endpoints }>> {
    const local = this.broker.getTopic(topic);
    if (this.clusterRoutes) {
      const brokers = await this.clusterRoutes.lookup(topic).catch(() => []);
      if (brokers.length > 0) {
        return brokers.map((b) => ({
          brokerName: b.brokerName,
          config: {
            topic,
            readQueueCount: b.readQueueCount,
            writeQueueCount: b.writeQueueCount,
            permission: b.permission,
            fifo: b.fifo,
          },
          endpoints: endpointsOf(b.grpcAddress),
        }));
      }
    }
    if (!local)
      throw new StatusFailure(Code.TOPIC_NOT_FOUND, `topic "${topic}" does not exist; create it first`);
    return [{ brokerName: this.broker.brokerName, config: local, endpoints: dialled }];
  }

  heartbeat(context: CallContext, request: HeartbeatRequest): StatusResponse {
    return answer(
      () => {
        const group = request.group ? groupOf(request.group) : undefined;
        this.sessions.heartbeat(context.clientId, request.clientType, group);
        return { status: OK_STATUS };
      },
      (status) => ({ status }),
    );
  }

  async sendMessage(context: CallContext, request: SendMessageRequest): Promise<SendMessageResponse> {
    const messages = request.messages;
    const failAll = (status: Status): SendMessageResponse => ({
      status,
      entries: messages.map((m) => failedEntry(status, m.systemProperties?.messageId ?? '')),
    });
    let topic: string;
    let config: TopicConfig | undefined;
    try {
      if (messages.length === 0)
        throw new StatusFailure(Code.MESSAGE_CORRUPTED, 'SendMessageRequest has no message');
      topic = topicOf(messages[0]!.topic);
      if (messages.some((m) => m.topic?.name !== topic)) {
        throw new StatusFailure(
          Code.MESSAGE_CORRUPTED,
          'all messages of one SendMessageRequest go to one topic',
        );
      }
      config = this.broker.getTopic(topic);
      if (!config && !this.broker.options.autoCreateTopics) {
        throw new StatusFailure(Code.TOPIC_NOT_FOUND, `topic "${topic}" does not exist; create it first`);
      }
    } catch (error) {
      return failAll(statusOfError(error));
    }
    const entries = await Promise.all(
      messages.map(async (message): Promise<SendResultEntry> => {
        try {
          const inbound = inboundMessage(message, config, {
            maxBodyBytes: this.limits.maxBodyBytes,
            maxDelayMs: this.broker.options.maxDelayMs,
            nowMs: this.now,
          });
          const sent = await this.broker.send({
            // the Apache proxy's producer group of a gRPC producer is the topic
            producerGroup: topic,
            topic,
            messages: [inbound.input],
            bornTimestampMs: timestampOr(message.systemProperties?.bornTimestamp, this.now),
            bornHost: context.peer,
            transactional: inbound.transactional,
          });
          const stored = sent.messages[0]!;
          const messageId = message.systemProperties!.messageId;
          const delayed = (inbound.input.deliveryTimeMs ?? 0) > this.now && !inbound.transactional;
          return {
            status: OK_STATUS,
            messageId,
            transactionId: stored.transactionId ?? '',
            offset: stored.queueOffset,
            // a delayed message can be recalled until due (RecallMessage)
            ...(delayed
              ? {
                  recallHandle: encodeRecallHandle({
                    topic,
                    scheduleOffset: stored.queueOffset,
                    storedId: stored.msgId,
                    messageId,
                  }),
                }
              : {}),
          };
        } catch (error) {
          return failedEntry(statusOfError(error), message.systemProperties?.messageId ?? '');
        }
      }),
    );
    return { status: common(entries), entries };
  }

  async queryAssignment(request: QueryAssignmentRequest): Promise<QueryAssignmentResponse> {
    try {
      const topic = topicOf(request.topic, true);
      groupOf(request.group);
      const readable = (await this.routeBrokers(topic, accessPoint(request.endpoints))).filter(
        (b) => (b.config.permission & Permission.READ) !== 0 && b.config.readQueueCount > 0,
      );
      if (readable.length === 0)
        throw new StatusFailure(Code.FORBIDDEN, `topic "${topic}" has no readable queue`);
      // one assignment per broker with queue -1, as Apache gives a non-FIFO group: the broker pops
      // from all queues of the topic, and keeps FIFO order per queue itself
      return {
        status: OK_STATUS,
        assignments: readable.map((b) => ({
          messageQueue: this.queue(b.config, -1, b.endpoints, b.brokerName),
        })),
      };
    } catch (error) {
      return { status: statusOfError(error), assignments: [] };
    }
  }

  /**
   * Pops messages for a consumer, holding the call for the long-polling time when none is ready.
   * Frames as the Apache proxy writes them: a status, the messages, then the delivery timestamp.
   */
  async receiveMessage(
    context: CallContext,
    request: ReceiveMessageRequest,
  ): Promise<ReceiveMessageResponse[]> {
    let status: Status;
    const frames: ReceiveMessageResponse[] = [];
    try {
      const group = groupOf(request.group);
      const topic = topicOf(request.messageQueue?.topic, true);
      const filter = filterOf(request.filterExpression);
      let invisibleTimeMs: number;
      if (request.autoRenew) {
        invisibleTimeMs = AUTO_RENEW_INVISIBLE_TIME_MS;
      } else {
        invisibleTimeMs = request.invisibleDuration ? durationMs(request.invisibleDuration) : 0;
        if (invisibleTimeMs < MIN_INVISIBLE_TIME_MS || invisibleTimeMs > MAX_INVISIBLE_TIME_MS) {
          throw new StatusFailure(
            Code.ILLEGAL_INVISIBLE_TIME,
            `invisible_duration must be ${MIN_INVISIBLE_TIME_MS} ms to ${MAX_INVISIBLE_TIME_MS} ms; got ${invisibleTimeMs} ms`,
          );
        }
      }
      const maxCount = Math.min(Math.max(request.batchSize, 1), MAX_RECEIVE_BATCH);
      const pollTimeoutMs = this.pollTime(context, request);
      if (!this.broker.getTopic(topic))
        throw new StatusFailure(Code.TOPIC_NOT_FOUND, `topic "${topic}" does not exist`);
      const popped = await this.broker.pop({
        consumerGroup: group,
        topic,
        subscription: { topic, ...filter },
        maxCount,
        invisibleTimeMs,
        pollTimeoutMs,
      });
      status = popped.length > 0 ? OK_STATUS : { code: Code.MESSAGE_NOT_FOUND, message: 'no new message' };
      const deadlineMs = this.now + invisibleTimeMs;
      for (const p of popped) {
        const message = outboundMessage(p.message, {
          receiptHandle: p.receiptHandle,
          deliveryAttempt: p.deliveryAttempt,
        });
        if (request.autoRenew) {
          this.renewal.track(
            context.clientId,
            group,
            topic,
            message.systemProperties!.receiptHandle!,
            deadlineMs,
          );
        }
        frames.push({ message });
      }
    } catch (error) {
      status = statusOfError(error);
    }
    return [{ status }, ...frames, { deliveryTimestamp: msTimestamp(this.now) }];
  }

  /**
   * The long-polling time: the request's (push consumers send it; 20 s at most), cut to what the
   * call's deadline leaves. Unlike the Apache proxy, a short deadline is served with a short poll
   * rather than refused with ILLEGAL_POLLING_TIME.
   */
  private pollTime(context: CallContext, request: ReceiveMessageRequest): number {
    const asked = request.longPollingTimeout ? durationMs(request.longPollingTimeout) : MAX_LONG_POLLING_MS;
    const left = context.deadlineMs - this.now - RECEIVE_DEADLINE_MARGIN_MS;
    return Math.max(0, Math.min(asked, MAX_LONG_POLLING_MS, left));
  }

  async ackMessage(request: AckMessageRequest): Promise<AckMessageResponse> {
    let group: string;
    let topic: string;
    try {
      group = groupOf(request.group);
      topic = topicOf(request.topic, true);
    } catch (error) {
      return { status: statusOfError(error), entries: [] };
    }
    // one after the other: the broker's ack does no I/O, so running them side by side only costs a
    // closure and a promise per entry (the official clients send one entry per AckMessage; RocketNest's
    // Apache driver batches up to 32)
    const entries: AckMessageResponse['entries'] = [];
    for (const entry of request.entries) {
      let status: Status = OK_STATUS;
      try {
        const handle = this.handle(this.renewal.resolve(entry.receiptHandle));
        await this.broker.ack({ consumerGroup: group, topic, receiptHandle: handle.brokerHandle });
      } catch (error) {
        status = statusOfError(error);
      }
      entries.push({ messageId: entry.messageId, receiptHandle: entry.receiptHandle, status });
    }
    return { status: common(entries), entries };
  }

  async changeInvisibleDuration(
    request: ChangeInvisibleDurationRequest,
  ): Promise<ChangeInvisibleDurationResponse> {
    try {
      const group = groupOf(request.group);
      const topic = topicOf(request.topic, true);
      const invisibleTimeMs = durationMs(request.invisibleDuration);
      if (!request.invisibleDuration || invisibleTimeMs < 0 || invisibleTimeMs > MAX_INVISIBLE_TIME_MS) {
        throw new StatusFailure(
          Code.ILLEGAL_INVISIBLE_TIME,
          `invisible_duration must be 0 to ${MAX_INVISIBLE_TIME_MS} ms`,
        );
      }
      const handle = this.handle(this.renewal.resolve(request.receiptHandle));
      const { receiptHandle } = await this.broker.changeInvisibleTime({
        consumerGroup: group,
        topic,
        receiptHandle: handle.brokerHandle,
        invisibleTimeMs,
      });
      return {
        status: OK_STATUS,
        receiptHandle: encodeGrpcReceiptHandle({ ...handle, brokerHandle: receiptHandle }),
      };
    } catch (error) {
      return { status: statusOfError(error), receiptHandle: '' };
    }
  }

  /** Stores the message in the group's dead-letter topic (the broker's send-back with no retries left), then acks it. */
  async forwardToDeadLetterQueue(request: ForwardMessageToDeadLetterQueueRequest): Promise<StatusResponse> {
    try {
      const group = groupOf(request.group);
      const topic = topicOf(request.topic, true);
      // checks the handle first: a forged or stale one must not dead-letter anything
      const handle = this.handle(this.renewal.resolve(request.receiptHandle));
      const at = decodeReceiptHandle(handle.brokerHandle);
      const stored = this.broker.viewMessage(handle.storedId);
      if (
        !stored ||
        stored.queueId !== at.queueId ||
        stored.queueOffset !== at.queueOffset ||
        (at.retry ? !stored.topic.startsWith(RETRY_TOPIC_PREFIX) : stored.topic !== at.topic)
      ) {
        throw new StatusFailure(
          Code.INVALID_RECEIPT_HANDLE,
          'the receipt handle does not name a message of this broker',
        );
      }
      const { receiptHandle } = await this.broker.changeInvisibleTime({
        consumerGroup: group,
        topic,
        receiptHandle: handle.brokerHandle,
        invisibleTimeMs: MIN_INVISIBLE_TIME_MS,
      });
      await this.broker.sendBack({ consumerGroup: group, msgId: handle.storedId, maxReconsumeTimes: 0 });
      await this.broker.ack({ consumerGroup: group, topic, receiptHandle });
      return { status: OK_STATUS };
    } catch (error) {
      return { status: statusOfError(error, Code.MESSAGE_NOT_FOUND) };
    }
  }

  /** Recalls a delayed message before it is due, by the recall handle its send returned. */
  recallMessage(request: RecallMessageRequest): RecallMessageResponse {
    return answer(
      () => {
        const topic = topicOf(request.topic);
        const handle = decodeRecallHandle(request.recallHandle);
        if (!handle || handle.topic !== topic) {
          throw new StatusFailure(
            Code.BAD_REQUEST,
            'the recall handle is not one this broker gave for a delayed message of this topic',
          );
        }
        this.broker.recallDelayed({ topic, queueOffset: handle.scheduleOffset, msgId: handle.storedId });
        return { status: OK_STATUS, messageId: handle.messageId };
      },
      (status) => ({ status, messageId: '' }),
    );
  }

  async endTransaction(request: EndTransactionRequest): Promise<StatusResponse> {
    try {
      const topic = topicOf(request.topic);
      if (request.transactionId.trim() === '') {
        throw new StatusFailure(Code.INVALID_TRANSACTION_ID, 'transaction_id is blank');
      }
      await this.broker.endTransaction({
        producerGroup: topic,
        transactionId: request.transactionId,
        resolution:
          request.resolution === TransactionResolution.COMMIT
            ? 'COMMIT'
            : request.resolution === TransactionResolution.ROLLBACK
              ? 'ROLLBACK'
              : 'UNKNOWN',
        fromCheck: request.source === TransactionSource.SERVER_CHECK,
      });
      return { status: OK_STATUS };
    } catch (error) {
      const status = statusOfError(error, Code.INVALID_TRANSACTION_ID);
      return {
        status: status.code === Code.BAD_REQUEST ? { ...status, code: Code.INVALID_TRANSACTION_ID } : status,
      };
    }
  }

  notifyClientTermination(context: CallContext, request: NotifyClientTerminationRequest): StatusResponse {
    return answer(
      () => {
        if (request.group) groupOf(request.group);
        this.sessions.terminate(context.clientId);
        this.renewal.forget(context.clientId);
        return { status: OK_STATUS };
      },
      (status) => ({ status }),
    );
  }

  private handle(text: string): GrpcReceiptHandle {
    const handle = decodeGrpcReceiptHandle(text);
    if (!handle)
      throw new StatusFailure(Code.INVALID_RECEIPT_HANDLE, 'the receipt handle is not one this broker made');
    return handle;
  }

  private queue(
    config: TopicConfig,
    id: number,
    endpoints: Endpoints,
    brokerName = this.broker.brokerName,
  ): MessageQueue {
    const readable = id < 0 || id < config.readQueueCount ? config.permission & Permission.READ : 0;
    const writable = id < 0 || id < config.writeQueueCount ? config.permission & Permission.WRITE : 0;
    return {
      topic: { resourceNamespace: '', name: config.topic },
      id,
      permission:
        readable && writable
          ? PermissionV2.READ_WRITE
          : readable
            ? PermissionV2.READ
            : writable
              ? PermissionV2.WRITE
              : PermissionV2.NONE,
      broker: { name: brokerName, id: 0, endpoints },
      acceptMessageTypes: acceptedTypes(config),
    };
  }
}

/** The endpoints a client dialled, which the route hands back (Apache's `useEndpointPortFromRequest`). */
/** A registered `host:port` as gRPC endpoints (IPv4 when the host is one, else a domain name). */
function endpointsOf(address: string): Endpoints {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  return {
    scheme: /^\d{1,3}(\.\d{1,3}){3}$/.test(host) ? AddressScheme.IPv4 : AddressScheme.DOMAIN_NAME,
    addresses: [{ host, port: Number(address.slice(at + 1)) }],
  };
}

function accessPoint(endpoints: Endpoints | null | undefined): Endpoints {
  if (!endpoints || endpoints.addresses.length === 0) {
    throw new StatusFailure(
      Code.ILLEGAL_ACCESS_POINT,
      'endpoints (the address the client dialled) are required',
    );
  }
  return {
    scheme: endpoints.scheme || AddressScheme.IPv4,
    addresses: endpoints.addresses.map((a) => ({ host: a.host, port: a.port })),
  };
}

function answer<T>(run: () => T, fail: (status: Status) => T): T {
  try {
    return run();
  } catch (error) {
    return fail(statusOfError(error));
  }
}

function failedEntry(status: Status, messageId: string): SendResultEntry {
  return { status, messageId, transactionId: '', offset: 0 };
}

/** The entries' common status (OK for none), or MULTIPLE_RESULTS when they differ. */
function common(entries: ReadonlyArray<{ status: Status }>): Status {
  const first = entries[0]?.status ?? OK_STATUS;
  for (const e of entries) {
    if (e.status.code !== first.code) return { code: Code.MULTIPLE_RESULTS, message: 'entries differ' };
  }
  return first;
}

function timestampOr(t: { seconds: unknown } | null | undefined, fallback: number): number {
  if (!t) return fallback;
  const ms = durationMs(t as never);
  return ms > 0 ? ms : fallback;
}
