import type { MessageView } from '../message/message';
import { SystemProperty } from '../message/system-properties';
import type { AppendRequest } from '../store/message-store';

/**
 * A message parked on a system topic (a delayed message on the schedule topic, a half message on
 * the transaction topic) copied back to the topic and queue it was sent to, which its
 * `REAL_TOPIC` and `REAL_QUEUE_ID` properties name; those two properties are dropped and
 * `extraProperties` added. The copy keeps body, tag, keys, message group and born time and host;
 * the caller adds what else its copy carries (flags, delivery time, ...).
 */
export function realTopicCopy(m: MessageView, extraProperties: Record<string, string> = {}): AppendRequest {
  const properties: Record<string, string> = { ...m.properties, ...extraProperties };
  const topic = properties[SystemProperty.REAL_TOPIC]!;
  const queueId = Number(properties[SystemProperty.REAL_QUEUE_ID]);
  delete properties[SystemProperty.REAL_TOPIC];
  delete properties[SystemProperty.REAL_QUEUE_ID];
  return {
    topic,
    queueId,
    body: m.body,
    tag: m.tag,
    keys: m.keys,
    properties,
    messageGroup: m.messageGroup,
    bornTimestampMs: m.bornTimestampMs,
    bornHost: m.bornHost,
  };
}
