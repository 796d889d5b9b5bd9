import { isDeepStrictEqual } from 'node:util';
import type { MessageView } from '@rocketnest/core-broker';
import type { TestBroker } from '../test-broker';

/** What a published message must have for `toHavePublished`; every field given must match. */
export interface PublishedMessageExpectation {
  tag?: string;
  /** Keys the message must carry (among others). */
  keys?: readonly string[];
  messageGroup?: string;
  /** User properties the message must carry (among others). */
  properties?: Readonly<Record<string, string>>;
  /** The body: a string (UTF-8, exact), or a value compared with the body parsed as JSON. */
  body?: unknown;
}

function matches(message: MessageView, expected: PublishedMessageExpectation): boolean {
  if (expected.tag !== undefined && message.tag !== expected.tag) return false;
  if (expected.messageGroup !== undefined && message.messageGroup !== expected.messageGroup) return false;
  if (expected.keys && !expected.keys.every((k) => message.keys.includes(k))) return false;
  for (const [name, value] of Object.entries(expected.properties ?? {})) {
    if (message.properties[name] !== value) return false;
  }
  if (expected.body !== undefined) {
    const text = message.body.toString('utf8');
    if (typeof expected.body === 'string') return text === expected.body;
    try {
      return isDeepStrictEqual(JSON.parse(text), expected.body);
    } catch {
      return false;
    }
  }
  return true;
}

function describeMessage(m: MessageView): string {
  const body = m.body.toString('utf8');
  return `  ${m.msgId} tag=${m.tag ?? '-'} keys=[${m.keys.join(',')}] body=${body.length > 60 ? `${body.slice(0, 57)}...` : body}`;
}

/**
 * Jest matchers for a {@link TestBroker}: `expect.extend(rocketMatchers)`, then
 * `expect(tb).toHavePublished('orders', { tag: 'created', body: { id: 42 } })` (and `.not`).
 */
export const rocketMatchers = {
  toHavePublished(
    received: TestBroker,
    topic: string,
    expected: PublishedMessageExpectation = {},
  ): { pass: boolean; message: () => string } {
    const messages = received.published(topic);
    const pass = messages.some((m) => matches(m, expected));
    const wanted = JSON.stringify(expected);
    return {
      pass,
      message: () =>
        pass
          ? `expected no message of topic "${topic}" matching ${wanted}, but one was published`
          : `expected a message of topic "${topic}" matching ${wanted}; published (${messages.length}):\n` +
            (messages.slice(-10).map(describeMessage).join('\n') || '  (none)'),
    };
  },
};

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace jest {
    interface Matchers<R> {
      /** The test broker stored a message in `topic` matching `expected` (tag, keys, group, properties, body). */
      toHavePublished(topic: string, expected?: PublishedMessageExpectation): R;
    }
  }
}
