import { RocketError, type MessageView } from '@rocketnest/core-broker';

/**
 * The body of an outgoing payload: bytes as they are (`Buffer`, `Uint8Array`), anything else as
 * JSON (`undefined` as `null`), so the default deserializer reads every payload back.
 */
export function encodeBody(payload: unknown): Uint8Array | string {
  if (payload instanceof Uint8Array) return payload;
  const json = JSON.stringify(payload ?? null);
  if (json === undefined) {
    throw new RocketError('INVALID_ARGUMENT', `a ${typeof payload} payload cannot be sent as JSON`);
  }
  return json;
}

/** The default deserializer: the body as JSON. An empty body is `undefined`. */
export function decodeJson(message: MessageView): unknown {
  if (message.body.length === 0) return undefined;
  return JSON.parse(message.body.toString('utf8'));
}

/** A short, loggable description of whatever was thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  if (error && typeof error === 'object') {
    try {
      return JSON.stringify(error);
    } catch {
      return String(error);
    }
  }
  return String(error);
}

/**
 * A destination as `RocketTemplate` and `RocketClient` take it: `topic` or `topic:tag` (as in
 * rocketmq-spring; topic names cannot contain `:`). `who` names the caller in the error.
 */
export function parseDestination(destination: unknown, who: string): { topic: string; tag?: string } {
  if (typeof destination !== 'string' || destination === '' || destination.startsWith(':')) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `${who}: a destination is "topic" or "topic:tag"; got ${JSON.stringify(destination)}`,
    );
  }
  const colon = destination.indexOf(':');
  if (colon < 0) return { topic: destination };
  const tag = destination.slice(colon + 1);
  return tag === '' ? { topic: destination.slice(0, colon) } : { topic: destination.slice(0, colon), tag };
}
