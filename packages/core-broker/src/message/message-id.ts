import { RocketError } from '../common/errors';

/**
 * Message id layout: 16 bytes written as 32 upper-case hex characters.
 *
 * | bytes | field            | meaning                                               |
 * |-------|------------------|-------------------------------------------------------|
 * | 0–7   | storeId          | random id of the data directory that holds the record |
 * | 8–15  | commitLogOffset  | byte offset of the record in that store's commit log  |
 *
 * Like RocketMQ's offset message id (store host + commit-log offset), the id is where to find the
 * record: a lookup by id needs no index. The store id, not a host address, names the store so an
 * id survives a broker moving to another address, and an id from a replaced data directory is
 * recognised as foreign.
 */
export const STORE_ID_HEX_LENGTH = 16;
export const MESSAGE_ID_HEX_LENGTH = 32;
const STORE_ID_PATTERN = /^[0-9A-F]{16}$/;
const MESSAGE_ID_PATTERN = /^[0-9A-F]{32}$/;

export interface MessageIdParts {
  storeId: string;
  commitLogOffset: number;
}

export function isStoreId(value: string): boolean {
  return STORE_ID_PATTERN.test(value);
}

export function formatMessageId(storeId: string, commitLogOffset: number): string {
  return storeId + commitLogOffset.toString(16).toUpperCase().padStart(16, '0');
}

export function parseMessageId(msgId: string): MessageIdParts {
  const id = msgId.toUpperCase();
  if (!MESSAGE_ID_PATTERN.test(id)) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `message id "${msgId}" is not ${MESSAGE_ID_HEX_LENGTH} hexadecimal characters`,
    );
  }
  const commitLogOffset = Number.parseInt(id.slice(STORE_ID_HEX_LENGTH), 16);
  if (!Number.isSafeInteger(commitLogOffset)) {
    throw new RocketError('INVALID_ARGUMENT', `message id "${msgId}" holds an offset beyond 2^53`);
  }
  return { storeId: id.slice(0, STORE_ID_HEX_LENGTH), commitLogOffset };
}
