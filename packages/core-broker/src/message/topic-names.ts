import { DLQ_TOPIC_PREFIX, RETRY_TOPIC_PREFIX } from './validation';

/**
 * The names RocketMQ derives from a consumer group or a message group: a group's retry and
 * dead-letter topics, and the queue a FIFO message group is sent to. They live here, below
 * both the broker and the clients, because both must compute exactly the same names: a client
 * that consumes `%RETRY%<group>` must not load the broker (and its store) to know the name.
 */

/** The retry topic of consumer `group`: `%RETRY%<group>` (RocketMQ `MixAll.getRetryTopic`). */
export const retryTopicOf = (group: string): string => `${RETRY_TOPIC_PREFIX}${group}`;

/** The dead-letter topic of consumer `group`: `%DLQ%<group>` (RocketMQ `MixAll.getDLQTopic`). */
export const deadLetterTopicOf = (group: string): string => `${DLQ_TOPIC_PREFIX}${group}`;

/**
 * Where the broker keeps a pop consumer's offsets of the retry messages of `topic`:
 * `%RETRY%<group>_<topic>` (RocketMQ 5 `KeyBuilder.buildPopRetryTopic`, v1 form).
 */
export const popRetryTopicOf = (group: string, topic: string): string => `${retryTopicOf(group)}_${topic}`;

/** True for `%RETRY%…` topics. */
export const isRetryTopic = (topic: string): boolean => topic.startsWith(RETRY_TOPIC_PREFIX);

/** True for `%DLQ%…` topics. */
export const isDeadLetterTopic = (topic: string): boolean => topic.startsWith(DLQ_TOPIC_PREFIX);

/**
 * The queue of a FIFO message group among `queueCount` queues: stable for a given group and
 * queue count (FNV-1a of the group's UTF-16 code units), so producers and the broker agree.
 */
export function queueForGroup(messageGroup: string, queueCount: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < messageGroup.length; i++) {
    hash ^= messageGroup.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % queueCount;
}
