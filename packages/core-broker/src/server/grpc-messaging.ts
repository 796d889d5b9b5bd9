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
  groupOf,
  inboundMessage,
  outboundMessage,
  statusOfError,
  topicOf,
} from './grpc-convert';
import { ClientSessions, MAX_LONG_POLLING_MS, filterOf } from './grpc-sessions';

/** Shortest invisible time a receive may ask for (RocketMQ proxy `minInvisibleTimeMillsForRecv`). */
export const MIN_INVISIBLE_TIME_MS = 10_000;
/** Longest invisible time (RocketMQ proxy `maxInvisibleTimeMills`). */
export const MAX_INVISIBLE_TIME_MS = 12 * 3600_000;
/**
 * Invisible time of a receive with `auto_renew` (push consumers; RocketMQ proxy
 * `defaultInvisibleTimeMills`). RocketNest does not renew it: a push consumer busy with one message
 * longer than this sees it again.
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
  constructor(
    private readonly broker: Broker,
    readonly sessions: ClientSessions,
    private readonly limits: { maxBodyBytes: number },
  ) {}

  private get now(): number {
    return this.broker.options.clock.now();
  }

  queryRoute(request: QueryRouteRequest): QueryRouteResponse {
    return answer(
      () => {
        const topic = topicOf(request.topic, true);
        const config = this.broker.getTopic(topic);
        if (!config)
          throw new StatusFailure(Code.TOPIC_NOT_FOUND, `topic "${topic}" does not exist; create it first`);
        const endpoints = accessPoint(request.endpoints);
        const queues: MessageQueue[] = [];
        const count = Math.max(config.readQueueCount, config.writeQueueCount);
        for (let id = 0; id < count; id++) queues.push(this.queue(config, id, endpoints));
        return { status: OK_STATUS, messageQueues: queues };
      },
      (status) => ({ status, messageQueues: [] }),
    );
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
          return {
            status: OK_STATUS,
            messageId: message.systemProperties!.messageId,
            transactionId: stored.transactionId ?? '',
            offset: stored.queueOffset,
          };
        } catch (error) {
          return failedEntry(statusOfError(error), message.systemProperties?.messageId ?? '');
        }
      }),
    );
    return { status: common(entries.map((e) => e.status)), entries };
  }

  queryAssignment(request: QueryAssignmentRequest): QueryAssignmentResponse {
    return answer(
      () => {
        const topic = topicOf(request.topic, true);
        groupOf(request.group);
        const config = this.broker.getTopic(topic);
        if (!config) throw new StatusFailure(Code.TOPIC_NOT_FOUND, `topic "${topic}" does not exist`);
        if ((config.permission & Permission.READ) === 0 || config.readQueueCount === 0) {
          throw new StatusFailure(Code.FORBIDDEN, `topic "${topic}" has no readable queue`);
        }
        // one assignment per broker with queue -1, as Apache gives a non-FIFO group: the broker pops
        // from all queues of the topic, and keeps FIFO order per queue itself
        return {
          status: OK_STATUS,
          assignments: [{ messageQueue: this.queue(config, -1, accessPoint(request.endpoints)) }],
        };
      },
      (status) => ({ status, assignments: [] }),
    );
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
      for (const p of popped) {
        frames.push({
          message: outboundMessage(p.message, {
            receiptHandle: p.receiptHandle,
            deliveryAttempt: p.deliveryAttempt,
          }),
        });
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
    const entries = await Promise.all(
      request.entries.map(async (entry) => {
        let status: Status = OK_STATUS;
        try {
          const handle = this.handle(entry.receiptHandle);
          await this.broker.ack({ consumerGroup: group, topic, receiptHandle: handle.brokerHandle });
        } catch (error) {
          status = statusOfError(error);
        }
        return { messageId: entry.messageId, receiptHandle: entry.receiptHandle, status };
      }),
    );
    return { status: entries.length === 0 ? OK_STATUS : common(entries.map((e) => e.status)), entries };
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
      const handle = this.handle(request.receiptHandle);
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
      const handle = this.handle(request.receiptHandle);
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

  private queue(config: TopicConfig, id: number, endpoints: Endpoints): MessageQueue {
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
      broker: { name: this.broker.brokerName, id: 0, endpoints },
      acceptMessageTypes: acceptedTypes(config),
    };
  }
}

/** The endpoints a client dialled, which the route hands back (Apache's `useEndpointPortFromRequest`). */
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

/** The entries' common status, or MULTIPLE_RESULTS when they differ. */
function common(statuses: Status[]): Status {
  const first = statuses[0] ?? OK_STATUS;
  return statuses.every((s) => s.code === first.code)
    ? first
    : { code: Code.MULTIPLE_RESULTS, message: 'entries differ' };
}

function timestampOr(t: { seconds: unknown } | null | undefined, fallback: number): number {
  if (!t) return fallback;
  const ms = durationMs(t as never);
  return ms > 0 ? ms : fallback;
}
