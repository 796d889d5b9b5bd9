/**
 * Properties the broker itself writes into messages it moves: retry, dead-letter, delayed and
 * transactional copies. User properties may not use the `__` prefix.
 */
export const SystemProperty = {
  /** Topic a retry or dead-letter copy was first sent to (RocketMQ `RETRY_TOPIC`). */
  ORIGIN_TOPIC: '__ORIGIN_TOPIC',
  /** Message id of the first copy (RocketMQ `ORIGIN_MESSAGE_ID`). */
  ORIGIN_MSG_ID: '__ORIGIN_MSG_ID',
  /** Topic and queue a delayed or half message goes to when due or committed (RocketMQ `REAL_TOPIC`, `REAL_QID`). */
  REAL_TOPIC: '__REAL_TOPIC',
  REAL_QUEUE_ID: '__REAL_QID',
  /** Producer group of a half message, asked on check-back (RocketMQ `PGROUP`). */
  PRODUCER_GROUP: '__PGROUP',
  /** Id of the transaction a committed message came from. */
  TRANSACTION_ID: '__TRANSACTION_ID',
} as const;

export const SYSTEM_PROPERTY_PREFIX = '__';

/** The user's properties of a message the broker moved: system ones removed. */
export function userProperties(properties: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key in properties) if (!key.startsWith(SYSTEM_PROPERTY_PREFIX)) out[key] = properties[key]!;
  return out;
}
