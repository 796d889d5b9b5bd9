import { RocketError } from '../common/errors';
import { STORE_ID_HEX_LENGTH } from '../message/message-id';

/**
 * A resume position: where a subscription is in every queue of its topic, and which store each
 * broker had when the position was made. It is text, opaque to clients, and versioned.
 *
 * ```
 * position := "1" ";" topicHash ( ";" broker )*
 * broker   := name ":" epoch ":" offset ( "," offset )*
 * ```
 *
 * | part      | format                                   | meaning                                              |
 * |-----------|------------------------------------------|------------------------------------------------------|
 * | `1`       | literal                                  | layout version                                       |
 * | topicHash | 8 lower-case hex digits                  | FNV-1a 32 of the topic: a position of another topic is refused |
 * | name      | broker name, `encodeURIComponent`-escaped | the broker (so `;`, `:` and `,` never appear in it)  |
 * | epoch     | 16 upper-case hex digits, or empty       | the broker's store id (first 16 hex digits of its message ids); empty while no message of the broker was seen |
 * | offset    | decimal                                  | next queue offset to read, one per queue id from 0   |
 *
 * Queues a position does not list (a topic that grew, a broker that joined) start at their
 * earliest message: everything in them is newer than the position.
 */
export const POSITION_VERSION = '1';
/** Most brokers one position may list. */
export const MAX_POSITION_BROKERS = 64;
/** Most queues per broker one position may list (the broker's own queue-count limit). */
export const MAX_POSITION_QUEUES = 1024;

export interface BrokerPosition {
  brokerName: string;
  /** The broker's store id, or `''` when unknown. */
  epoch: string;
  /** Next offset to read, indexed by queue id. */
  offsets: number[];
}

export interface Position {
  topicHash: string;
  brokers: BrokerPosition[];
}

/** FNV-1a 32 of `topic`, as 8 hex digits. */
export function topicHash(topic: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) {
    h ^= topic.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Escaped broker names: a position is encoded once per pushed frame, the names rarely change. */
const escapedNames = new Map<string, string>();
const MAX_ESCAPED_NAMES = 1024;

function escapedName(brokerName: string): string {
  let escaped = escapedNames.get(brokerName);
  if (escaped === undefined) {
    escaped = encodeURIComponent(brokerName);
    if (escapedNames.size >= MAX_ESCAPED_NAMES) escapedNames.clear();
    escapedNames.set(brokerName, escaped);
  }
  return escaped;
}

export function encodePosition(position: Position): string {
  let out = POSITION_VERSION + ';' + position.topicHash;
  for (const b of position.brokers) {
    out += ';' + escapedName(b.brokerName) + ':' + b.epoch + ':' + b.offsets.join(',');
  }
  return out;
}

/** Parses a position; a malformed one throws `INVALID_ARGUMENT` saying what is wrong. */
export function decodePosition(text: string): Position {
  const parts = text.split(';');
  if (parts[0] !== POSITION_VERSION) {
    throw invalid(`unknown position version "${(parts[0] ?? '').slice(0, 8)}"`);
  }
  const hash = parts[1] ?? '';
  if (!/^[0-9a-f]{8}$/.test(hash)) throw invalid('bad topic hash');
  if (parts.length - 2 > MAX_POSITION_BROKERS) throw invalid(`more than ${MAX_POSITION_BROKERS} brokers`);
  const brokers: BrokerPosition[] = [];
  const seen = new Set<string>();
  for (const part of parts.slice(2)) {
    const fields = part.split(':');
    if (fields.length !== 3) throw invalid('a broker entry is not name:epoch:offsets');
    const [rawName, epoch, rawOffsets] = fields as [string, string, string];
    let brokerName: string;
    try {
      brokerName = decodeURIComponent(rawName);
    } catch {
      throw invalid('a broker name is not URI-encoded');
    }
    if (brokerName.length === 0 || seen.has(brokerName)) throw invalid('empty or repeated broker name');
    seen.add(brokerName);
    if (epoch !== '' && !new RegExp(`^[0-9A-F]{${STORE_ID_HEX_LENGTH}}$`).test(epoch)) {
      throw invalid(`bad epoch of broker "${brokerName}"`);
    }
    const list = rawOffsets.split(',');
    if (list.length > MAX_POSITION_QUEUES) throw invalid(`more than ${MAX_POSITION_QUEUES} queues`);
    const offsets = list.map((o) => {
      const n = /^\d{1,16}$/.test(o) ? Number(o) : NaN;
      if (!Number.isSafeInteger(n)) throw invalid(`bad offset "${o.slice(0, 20)}"`);
      return n;
    });
    brokers.push({ brokerName, epoch, offsets });
  }
  return { topicHash: hash, brokers };
}

function invalid(what: string): RocketError {
  return new RocketError('INVALID_ARGUMENT', `malformed push position: ${what}`);
}
