import type { Response } from 'express';
import { isRocketError } from '@rocketnest/core-broker';

/** Media type of every error answer (RFC 9457). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An error answer: an HTTP status, a stable `code`, and a detail a client can act on. */
export interface Problem {
  status: number;
  /** Stable machine-readable code: a core-broker error code or one of the router's own. */
  code: string;
  /** Short, fixed summary of the code. */
  title: string;
  /** What went wrong in this request. Never a stack trace. */
  detail: string;
  /** Seconds, sent as `Retry-After` (429, 503). */
  retryAfterSeconds?: number;
  /** Extra headers (e.g. `WWW-Authenticate` on 401). */
  headers?: Record<string, string>;
}

export function problem(
  status: number,
  code: string,
  title: string,
  detail: string,
  extra: Partial<Problem> = {},
): Problem {
  return { status, code, title, detail, ...extra };
}

/** The JSON body of a problem: RFC 9457 members plus `code`. */
export function problemBody(p: Problem): Record<string, unknown> {
  return {
    type: `urn:rocketnest:problem:${p.code.toLowerCase().replace(/_/g, '-')}`,
    title: p.title,
    status: p.status,
    detail: p.detail,
    code: p.code,
  };
}

export function sendProblem(res: Response, p: Problem): void {
  if (p.retryAfterSeconds !== undefined) res.set('Retry-After', String(p.retryAfterSeconds));
  for (const [name, value] of Object.entries(p.headers ?? {})) res.set(name, value);
  res
    .status(p.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(problemBody(p)));
}

/** Seconds a client should wait after flow control or an unavailable broker. */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;

/**
 * Maps a failed send (a `RocketError`, possibly `SEND_FAILED` wrapping the last cause) to a problem:
 * bad input 400, unknown topic 404, flow control 429, producer or broker unavailable 503, broker
 * timeout 504, anything else 500 with a generic detail (the cause is not leaked).
 */
export function problemFromError(error: unknown, retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS): Problem {
  let e: unknown = error;
  // SEND_FAILED carries the last attempt's failure as its cause; answer for that one.
  while (isRocketError(e, 'SEND_FAILED') && isRocketError(e.cause)) e = e.cause;
  if (!isRocketError(e))
    return problem(500, 'INTERNAL_ERROR', 'Internal error', 'the request could not be completed');
  const detail = e.message;
  switch (e.code) {
    case 'INVALID_ARGUMENT':
      return problem(400, e.code, 'Invalid message', detail);
    case 'TOPIC_NOT_FOUND':
      return problem(404, e.code, 'Unknown topic', detail);
    case 'PERMISSION_DENIED':
    case 'ACCESS_DENIED':
      return problem(403, e.code, 'Forbidden', detail);
    case 'BROKER_BUSY':
    case 'DISK_FULL':
      return problem(429, e.code, 'Broker busy', detail, { retryAfterSeconds });
    case 'BROKER_UNAVAILABLE':
    case 'NAME_SERVER_UNAVAILABLE':
    case 'CLOSED':
    case 'STORE_IO_ERROR':
    case 'DATABASE_ERROR':
      return problem(503, e.code, 'Unavailable', detail, { retryAfterSeconds });
    case 'TIMEOUT':
      return problem(504, e.code, 'Broker timeout', detail);
    case 'SEND_FAILED':
      return e.retriable
        ? problem(503, e.code, 'Unavailable', detail, { retryAfterSeconds })
        : problem(502, e.code, 'Send failed', detail);
    default:
      return problem(500, e.code, 'Internal error', 'the request could not be completed');
  }
}
