import type { Request } from 'express';
import type { ProducerMessage } from '@rocketnest/core-broker';
import type { Problem } from './problem';
import { problem } from './problem';

/**
 * The documented request headers of the produce API (names are case-insensitive, as in HTTP):
 *
 * | header                    | message field | format |
 * |---------------------------|---------------|--------|
 * | `Rocket-Tag`              | tag           | text |
 * | `Rocket-Keys`             | keys          | comma-separated; each without whitespace |
 * | `Rocket-Message-Group`    | messageGroup  | text (FIFO group) |
 * | `Rocket-Delay-Ms`         | delayMs       | non-negative integer |
 * | `Rocket-Property-<name>`  | properties    | one per property; `<name>` arrives lower-cased |
 * | `Idempotency-Key`         | first key     | 1–255 visible ASCII characters, no spaces |
 */
export const HEADER_TAG = 'rocket-tag';
export const HEADER_KEYS = 'rocket-keys';
export const HEADER_MESSAGE_GROUP = 'rocket-message-group';
export const HEADER_DELAY_MS = 'rocket-delay-ms';
export const HEADER_PROPERTY_PREFIX = 'rocket-property-';
export const HEADER_IDEMPOTENCY_KEY = 'idempotency-key';

/** Media type of the JSON envelope: `{ body, bodyEncoding?, tag?, keys?, messageGroup?, delayMs?, properties? }`. */
export const ENVELOPE_CONTENT_TYPE = 'application/vnd.rocketnest.message+json';

/**
 * Deepest nesting of arrays and objects accepted in an envelope's JSON `body` (and in a body an
 * app-wide `express.json()` parsed first). The body is re-serialised, and `JSON.stringify` recurses:
 * a small request nested thousands of levels deep would exhaust the stack and fail as a 500, so it
 * is refused as a 400 first. Far above what real payloads nest.
 */
export const MAX_JSON_BODY_DEPTH = 256;

/** A message as the router builds it from a request, before the Idempotency-Key is added. */
export type ParsedMessage = Omit<ProducerMessage, 'topic' | 'body'> & { body: Buffer };

/** A parse failure: the problem to answer (400 or 413). */
export class RequestProblem extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

function bad(detail: string): RequestProblem {
  return new RequestProblem(problem(400, 'INVALID_REQUEST', 'Invalid request', detail));
}

function delayOf(value: unknown, where: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw bad(`${where} must be a non-negative integer of milliseconds`);
  return n;
}

/** The message fields carried by `Rocket-*` headers. */
export function messageFromHeaders(req: Request): Omit<ParsedMessage, 'body'> {
  const out: Omit<ParsedMessage, 'body'> = {};
  const header = (name: string): string | undefined => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(',') : value;
  };
  const tag = header(HEADER_TAG);
  if (tag !== undefined) out.tag = tag;
  const keys = header(HEADER_KEYS);
  if (keys !== undefined)
    out.keys = keys
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k.length > 0);
  const group = header(HEADER_MESSAGE_GROUP);
  if (group !== undefined) out.messageGroup = group;
  const delay = header(HEADER_DELAY_MS);
  if (delay !== undefined) out.delayMs = delayOf(delay, `header Rocket-Delay-Ms`);
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith(HEADER_PROPERTY_PREFIX) || value === undefined) continue;
    const key = name.slice(HEADER_PROPERTY_PREFIX.length);
    if (key.length === 0) throw bad('a Rocket-Property- header needs a property name after the prefix');
    properties[key] = Array.isArray(value) ? value.join(',') : value;
  }
  if (Object.keys(properties).length > 0) out.properties = properties;
  return out;
}

/** One envelope (the request body, or an item of a batch) as a message. */
export function messageFromEnvelope(value: unknown, where: string, maxBodyBytes: number): ParsedMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(`${where} must be a JSON object with a body`);
  const e = value as Record<string, unknown>;
  for (const name of Object.keys(e)) {
    if (!['body', 'bodyEncoding', 'tag', 'keys', 'messageGroup', 'delayMs', 'properties'].includes(name))
      throw bad(`${where} has the unknown field "${name}"`);
  }
  if (e.body === undefined || e.body === null) throw bad(`${where} needs a body`);
  const encoding = e.bodyEncoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64')
    throw bad(`${where}.bodyEncoding must be "utf8" or "base64"`);
  let body: Buffer;
  if (typeof e.body === 'string') {
    if (encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(e.body))
      throw bad(`${where}.body is not valid base64`);
    body = Buffer.from(e.body, encoding);
  } else {
    if (encoding === 'base64') throw bad(`${where}.body must be a string when bodyEncoding is "base64"`);
    body = Buffer.from(stringifyJson(e.body, `${where}.body`), 'utf8');
  }
  if (body.byteLength > maxBodyBytes) throw tooLarge(body.byteLength, maxBodyBytes);
  const out: ParsedMessage = { body };
  if (e.tag !== undefined) {
    if (typeof e.tag !== 'string') throw bad(`${where}.tag must be a string`);
    out.tag = e.tag;
  }
  if (e.keys !== undefined) {
    if (!Array.isArray(e.keys) || !e.keys.every((k) => typeof k === 'string'))
      throw bad(`${where}.keys must be an array of strings`);
    out.keys = e.keys as string[];
  }
  if (e.messageGroup !== undefined) {
    if (typeof e.messageGroup !== 'string') throw bad(`${where}.messageGroup must be a string`);
    out.messageGroup = e.messageGroup;
  }
  if (e.delayMs !== undefined) out.delayMs = delayOf(e.delayMs, `${where}.delayMs`);
  if (e.properties !== undefined) {
    const p = e.properties;
    if (
      typeof p !== 'object' ||
      p === null ||
      Array.isArray(p) ||
      !Object.values(p).every((v) => typeof v === 'string')
    )
      throw bad(`${where}.properties must be an object of string values`);
    out.properties = p as Record<string, string>;
  }
  return out;
}

export function tooLarge(bytes: number, limit: number): RequestProblem {
  return new RequestProblem(
    problem(
      413,
      'PAYLOAD_TOO_LARGE',
      'Payload too large',
      `message body is ${bytes} bytes; the limit is ${limit}`,
    ),
  );
}

/** Depth of the deepest array or object in `value` (0 for a scalar), walked without recursion. */
export function jsonDepth(value: unknown, stopAt = Infinity): number {
  let deepest = 0;
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: v, depth } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const here = depth + 1;
    if (here > deepest) deepest = here;
    if (deepest > stopAt) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: here });
    }
  }
  return deepest;
}

/**
 * Re-serialises a parsed JSON value, answering 400 when it nests deeper than
 * {@link MAX_JSON_BODY_DEPTH} (before `JSON.stringify` could run out of stack).
 */
export function stringifyJson(value: unknown, where: string): string {
  if (jsonDepth(value, MAX_JSON_BODY_DEPTH) > MAX_JSON_BODY_DEPTH)
    throw bad(`${where} nests deeper than ${MAX_JSON_BODY_DEPTH} levels of arrays and objects`);
  return JSON.stringify(value);
}

/** Parses JSON, answering 400 with the parser's reason when it is not. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw bad(`the body is not valid JSON: ${(error as Error).message}`);
  }
}

/** The request's `Idempotency-Key`, validated; undefined when absent. */
export function idempotencyKeyOf(req: Request, maxLength: number): string | undefined {
  const value = req.headers[HEADER_IDEMPOTENCY_KEY];
  if (value === undefined) return undefined;
  const key = Array.isArray(value) ? value.join(',') : value;
  if (key.length === 0 || key.length > maxLength || !/^[\x21-\x7e]+$/.test(key))
    throw bad(`Idempotency-Key must be 1 to ${maxLength} visible ASCII characters without spaces`);
  return key;
}
