import { RocketError } from '../common/errors';
import type { MessageInput } from '../message/message';
import type { TopicConfig } from '../message/protocol';

/**
 * A message's type, derived from what it carries as RocketMQ 5 does
 * (`TopicMessageType.parseFromMessageProperty`), in this order: a transactional send is
 * `TRANSACTION`; a delivery time is `DELAY`; a message group is `FIFO`; anything else `NORMAL`.
 */
export type MessageType = 'NORMAL' | 'FIFO' | 'DELAY' | 'TRANSACTION';

/**
 * A topic's type. RocketMQ sets it with the `message.type` attribute; here the topic's `fifo` flag
 * decides: a FIFO topic takes FIFO messages only, a normal topic takes normal, delayed and
 * transactional ones (RocketNest has no separate delay or transaction topic type, so a normal
 * topic is what RocketMQ would call MIXED minus FIFO).
 */
export type TopicMessageType = 'NORMAL' | 'FIFO';

const ACCEPTS: Record<TopicMessageType, readonly MessageType[]> = {
  NORMAL: ['NORMAL', 'DELAY', 'TRANSACTION'],
  FIFO: ['FIFO'],
};

export function messageTypeOf(
  message: Pick<MessageInput, 'messageGroup' | 'deliveryTimeMs'>,
  transactional: boolean,
): MessageType {
  if (transactional) return 'TRANSACTION';
  if (message.deliveryTimeMs !== undefined && message.deliveryTimeMs > 0) return 'DELAY';
  if (message.messageGroup !== undefined) return 'FIFO';
  return 'NORMAL';
}

export function topicMessageTypeOf(config: Pick<TopicConfig, 'fifo'>): TopicMessageType {
  return config.fifo ? 'FIFO' : 'NORMAL';
}

/**
 * Refuses a send whose messages do not fit the topic's type (RocketMQ 5's
 * `MESSAGE_PROPERTY_CONFLICT_WITH_TYPE`), with `INVALID_ARGUMENT` naming the topic type, the
 * message type and the fix. The broker runs it unless `enableTopicMessageTypeCheck` is off.
 */
export function checkMessageType(
  config: Pick<TopicConfig, 'topic' | 'fifo'>,
  messages: ReadonlyArray<Pick<MessageInput, 'messageGroup' | 'deliveryTimeMs'>>,
  transactional: boolean,
): void {
  const topicType = topicMessageTypeOf(config);
  for (const message of messages) {
    const type = messageTypeOf(message, transactional);
    if (ACCEPTS[topicType].includes(type)) continue;
    throw new RocketError(
      'INVALID_ARGUMENT',
      `topic "${config.topic}" is a ${topicType} topic and does not take ${type} messages: ${fix(topicType, type)} (the broker checks message types against topic types as RocketMQ 5 does; enableTopicMessageTypeCheck turns it off)`,
    );
  }
}

function fix(topicType: TopicMessageType, type: MessageType): string {
  if (topicType === 'NORMAL') {
    // the only message type a normal topic refuses is FIFO
    return 'a message with a messageGroup is a FIFO message; send it without messageGroup, or to a FIFO topic (create one with fifo: true, `rocketnest admin topic create --fifo true`)';
  }
  switch (type) {
    case 'NORMAL':
      return 'every message needs a messageGroup (order is kept per group); set messageGroup, or send to a normal topic';
    case 'DELAY':
      return "a delivery time would break its group's order; send it without deliveryTimeMs/delayMs, or to a normal topic";
    default:
      return 'send transactional messages to a normal topic';
  }
}
