import type { Broker } from '../broker/broker';
import { isRocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import type { AdminOperationName, AdminOperationResponse } from '../message/operations';
import type { AdminMessage, TopicInput } from '../message/protocol';
import { AdminRequest } from './admin-request';

/** Most messages one admin query by key returns. */
export const MAX_ADMIN_QUERY_RESULTS = 256;
/** Messages one admin query by key returns when the request names no `maxCount`. */
export const DEFAULT_ADMIN_QUERY_RESULTS = 32;

/**
 * How each admin operation (the admin table of `message/operations.ts`) is served: its JSON request,
 * of any shape, checked field by field (`INVALID_ARGUMENT` naming the field), then the broker call.
 * Every front end that serves admin requests calls these by operation name.
 */
export const ADMIN_HANDLERS: {
  readonly [N in AdminOperationName]: (
    broker: Broker,
    raw: unknown,
  ) => AdminOperationResponse<N> | Promise<AdminOperationResponse<N>>;
} = Object.freeze({
  updateTopic: (b: Broker, raw: unknown) => {
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
  },
  listTopics: (b: Broker) => b.listTopics(),
  storeStats: (b: Broker) => b.stats(),
  consumeStats: (b: Broker, raw: unknown) => {
    const r = new AdminRequest('consume stats', raw);
    return b.consumeStats(r.str('group'), r.optStr('topic'));
  },
  viewMessage: (b: Broker, raw: unknown) => {
    const msgId = new AdminRequest('view message', raw).str('msgId');
    let view: MessageView | undefined;
    try {
      view = b.viewMessage(msgId);
    } catch (error) {
      // a malformed id names no message of any broker
      if (!isRocketError(error, 'INVALID_ARGUMENT')) throw error;
    }
    return view ? adminMessage(b.brokerName, view) : null;
  },
  queryMessageByKey: (b: Broker, raw: unknown) => {
    const r = new AdminRequest('query message by key', raw);
    const maxCount = Math.min(
      r.optInt('maxCount', 1) ?? DEFAULT_ADMIN_QUERY_RESULTS,
      MAX_ADMIN_QUERY_RESULTS,
    );
    return b
      .queryByKey(r.str('topic'), r.str('key'), undefined, undefined, maxCount)
      .map((view) => adminMessage(b.brokerName, view));
  },
  resetOffset: (b: Broker, raw: unknown) => {
    const r = new AdminRequest('reset offset', raw);
    return b.resetOffsetByTime(r.str('group'), r.str('topic'), r.int('timestampMs'));
  },
  replicaSync: (b: Broker) => b.replicaSyncState(),
  resendDeadLetter: (b: Broker, raw: unknown) => {
    const r = new AdminRequest('resend dead letter', raw);
    return b.resendDeadLetter(r.str('group'), r.str('msgId'));
  },
});

/** A stored message as admin tools see it: the body as base64, the broker named. */
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
