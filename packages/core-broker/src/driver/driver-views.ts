import type { SendResult } from '../client/producer-types';
import type { MessageView } from '../message/message';
import type { DriverMessage, DriverSendResult } from './contract';

/**
 * A driver's message as the `MessageView` that listeners, checkers and push frames take. A
 * message-level target (Apache RocketMQ's proxy) does not say which queue, offset or store host a
 * message came from: those fields are -1, 0 or ''.
 */
export function messageViewOfDriverMessage(message: DriverMessage): MessageView {
  return {
    msgId: message.msgId,
    topic: message.topic,
    queueId: -1,
    queueOffset: -1,
    commitLogOffset: -1,
    body: message.body,
    tag: message.tag,
    keys: message.keys,
    properties: message.properties,
    messageGroup: message.messageGroup,
    deliveryTimeMs: 0,
    bornTimestampMs: message.bornTimestampMs,
    bornHost: '',
    storeTimestampMs: 0,
    storeHost: '',
    reconsumeTimes: message.deliveryAttempt - 1,
    flags: 0,
    preparedTransactionOffset: 0,
    storeSize: message.body.length,
  };
}

/**
 * A driver send as a `Producer`'s `SendResult`. The target answers a send OK only once its own flush
 * and replication policy is met; it does not say which queue took it (`brokerName: ''`, -1).
 */
export function sendResultOfDriverSend(sent: DriverSendResult): SendResult {
  return {
    msgId: sent.msgId,
    topic: sent.topic,
    brokerName: '',
    queueId: -1,
    queueOffset: -1,
    status: 'SEND_OK',
  };
}
