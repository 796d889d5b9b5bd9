import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response, Router } from 'express';
import express from 'express';
import { DEFAULT_MAX_BODY_BYTES, isRocketError, validateUserTopic } from '@rocketnest/core-broker';
import type { ProducerMessage, SendResult } from '@rocketnest/core-broker';
import type { OutboxMessage } from '@rocketnest/core-broker/outbox';
import type { IdempotencyStore, StoredResponse } from './idempotency-store';
import { MAX_IDEMPOTENCY_KEY_LENGTH, MemoryIdempotencyStore } from './idempotency-store';
import { LazyProducer, ServerTracker } from './lazy-producer';
import { intOption } from '@rocketnest/core-broker/internal';
import type { ProducerSource } from './lazy-producer';
import type { OutboxWriter } from './outbox-writers';
import type { Problem } from './problem';
import { DEFAULT_RETRY_AFTER_SECONDS, problem, problemBody, problemFromError, sendProblem } from './problem';
import type { ParsedMessage } from './request-message';
import {
  ENVELOPE_CONTENT_TYPE,
  RequestProblem,
  idempotencyKeyOf,
  messageFromEnvelope,
  messageFromHeaders,
  parseJson,
  stringifyJson,
  tooLarge,
} from './request-message';

/** Messages one batch request may carry. */
export const DEFAULT_MAX_BATCH_MESSAGES = 64;
/** Largest HTTP request body read, in bytes (a base64 envelope of a 4 MiB body fits). */
export const DEFAULT_MAX_REQUEST_BYTES = 6 * 1024 * 1024;
/** Media types accepted as a raw message body (besides the envelope). */
export const DEFAULT_RAW_CONTENT_TYPES: readonly string[] = [
  'application/json',
  'text/plain',
  'application/octet-stream',
];
/** Header marking a replayed response. */
export const IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed';

/**
 * What `authorize` answers: `true` to let the request through, `false` or `'forbidden'` for 403,
 * `'unauthenticated'` for 401 (with `WWW-Authenticate`).
 */
export type AuthorizeResult = boolean | 'forbidden' | 'unauthenticated';

export interface RocketProduceRouterOptions extends ProducerSource {
  /**
   * Decides whether this request may produce to `topic` with `tag` (after the body was parsed, so
   * the tag is known; for a batch, once per item). Default: everything is allowed.
   */
  authorize?: (
    req: Request,
    topic: string,
    tag: string | undefined,
  ) => AuthorizeResult | Promise<AuthorizeResult>;
  /** `WWW-Authenticate` sent with 401. Default `Bearer`. */
  wwwAuthenticate?: string;
  /**
   * Topics this API serves; others get 404 before anything is sent or written. Default: any topic,
   * and a topic the broker does not know gets 404 from the send (not in outbox mode).
   */
  topics?: readonly string[] | ((topic: string) => boolean);
  /** Largest message body, in bytes; over it 413. Default 4 MiB (RocketMQ `maxMessageSize`). */
  maxBodyBytes?: number;
  /** Largest HTTP request body read, in bytes; over it 413. Default 6 MiB. */
  maxRequestBytes?: number;
  /** Messages per batch request; over it 413. Default 64. */
  maxBatchMessages?: number;
  /** Media types accepted as a raw body (the envelope type is always accepted). Default JSON, text, octet-stream. */
  rawContentTypes?: readonly string[];
  /** Where Idempotency-Keys live. Default: a {@link MemoryIdempotencyStore} (10 000 keys, 24 h). */
  idempotencyStore?: IdempotencyStore;
  /** `Retry-After` seconds on 429 and 503. Default 1. */
  retryAfterSeconds?: number;
  /**
   * Outbox mode: write messages with this instead of sending them, and answer 202 with the outbox
   * row ids (a relay publishes them). No producer is needed then.
   */
  outbox?: OutboxWriter;
}

/** The router, plus `close()`: shuts the producer it owns down for good. */
export interface RocketProduceRouter extends Router {
  close(): Promise<void>;
}

interface Answer {
  status: number;
  /** False when the answer must not be replayed (a batch with an item a retry may fix). */
  keep?: boolean;
  body: Record<string, unknown>;
  contentType: string;
  headers: Record<string, string>;
}

const json = (status: number, body: Record<string, unknown>): Answer => ({
  status,
  body,
  contentType: 'application/json',
  headers: {},
});
const fromProblem = (p: Problem): Answer => ({
  status: p.status,
  body: problemBody(p),
  contentType: 'application/problem+json',
  headers: {
    ...(p.retryAfterSeconds !== undefined ? { 'Retry-After': String(p.retryAfterSeconds) } : {}),
    ...p.headers,
  },
});

/**
 * A REST produce API as an Express router:
 *
 * - `POST /topics/:topic/messages` — one message: a raw body (JSON, text, bytes) with `Rocket-*`
 *   headers, or the JSON envelope (`application/vnd.rocketnest.message+json`). Answers 201 with
 *   `{ msgId, topic, brokerName, queueId, queueOffset }`, or 202 with `{ outboxId, topic, state: 'pending' }` in
 *   outbox mode.
 * - `POST /topics/:topic/messages/batch` — `{ "messages": [envelope…] }` (JSON); answers 200 with a
 *   result per item (`status` 201/202 and the fields above, or a problem), in order.
 * - Errors are `application/problem+json` with a stable `code` and no stack trace: 400 bad input,
 *   401/403 from `authorize`, 404 unknown topic, 409 Idempotency-Key in flight, 413 too large,
 *   415 media type, 422 Idempotency-Key reused with another request, 429/503 with `Retry-After`
 *   on flow control or an unavailable producer/broker, 504 broker timeout.
 * - `Idempotency-Key`: the first response (2xx) is stored and replayed for the same key and the
 *   same request (with `Idempotent-Replayed: true`); the key is also the message's first key (for
 *   a batch item: `<key>-<index>`). A failed request does not keep its key, so it can be retried.
 */
export function rocketProduceRouter(options: RocketProduceRouterOptions): RocketProduceRouter {
  const producer = options.outbox ? undefined : new LazyProducer(options, 'rocketProduceRouter');
  const owner = 'rocketProduceRouter';
  const maxBodyBytes = intOption(owner, 'maxBodyBytes', options.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 1);
  const maxRequestBytes = intOption(
    owner,
    'maxRequestBytes',
    options.maxRequestBytes,
    DEFAULT_MAX_REQUEST_BYTES,
    1,
  );
  const maxBatch = intOption(
    owner,
    'maxBatchMessages',
    options.maxBatchMessages,
    DEFAULT_MAX_BATCH_MESSAGES,
    1,
    10_000,
  );
  const rawTypes = options.rawContentTypes ?? DEFAULT_RAW_CONTENT_TYPES;
  const store = options.idempotencyStore ?? new MemoryIdempotencyStore();
  const retryAfter = intOption(
    owner,
    'retryAfterSeconds',
    options.retryAfterSeconds,
    DEFAULT_RETRY_AFTER_SECONDS,
    0,
    86_400,
  );
  const topics = options.topics;
  const knownTopic =
    topics === undefined
      ? () => true
      : typeof topics === 'function'
        ? topics
        : (t: string) => topics.includes(t);

  const router = express.Router() as RocketProduceRouter;
  // Like rocketPublisher: the producer stops when the last server that used it closes, and
  // starts again at the next send.
  const servers = new ServerTracker(() => void producer?.reset().catch(() => undefined));
  router.use((req, _res, next) => {
    servers.seen(req);
    next();
  });
  const readBody = express.raw({ type: () => true, limit: maxRequestBytes });

  /**
   * 413 as soon as the headers declare a body over `maxRequestBytes`, before any of it is read.
   * (The body parser's own limit answers only once the client has sent the whole body.) The
   * connection is closed after the answer instead of draining a body nobody will read.
   */
  const refuseDeclaredTooLarge = (req: Request, res: Response, next: NextFunction): void => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > maxRequestBytes) {
      res.set('Connection', 'close');
      sendProblem(
        res,
        problem(
          413,
          'PAYLOAD_TOO_LARGE',
          'Payload too large',
          `the request declares ${declared} bytes; the limit is ${maxRequestBytes}`,
        ),
      );
      return;
    }
    next();
  };

  /**
   * The request body as bytes. The router reads it itself; when an app-wide body parser ran first
   * (`express.json()`, `express.text()`), its result is turned back into bytes (JSON re-serialised).
   */
  const bodyOf = (req: Request): Buffer => {
    const body: unknown = req.body;
    if (Buffer.isBuffer(body)) return body;
    if (typeof body === 'string') return Buffer.from(body, 'utf8');
    const hadBody =
      req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (hadBody && body !== undefined && body !== null)
      return Buffer.from(stringifyJson(body, 'the request body'), 'utf8');
    return Buffer.alloc(0);
  };

  const requireType =
    (batch: boolean) =>
    (req: Request, res: Response, next: NextFunction): void => {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const accepted = batch ? ['application/json'] : [ENVELOPE_CONTENT_TYPE, ...rawTypes];
      if (!accepted.includes(type)) {
        sendProblem(
          res,
          problem(
            415,
            'UNSUPPORTED_MEDIA_TYPE',
            'Unsupported media type',
            `Content-Type ${type ? `"${type}"` : '(none)'} is not accepted here; use ${accepted.join(', ')}`,
          ),
        );
        return;
      }
      next();
    };

  /** Sends or writes parsed messages of one topic; one answer per message, in order. */
  const deliver = async (
    req: Request,
    topic: string,
    messages: ParsedMessage[],
    keys: Array<string | undefined>,
  ): Promise<Answer[]> => {
    const withKeys = messages.map((m, i): ProducerMessage => {
      const key = keys[i];
      return { ...m, topic, ...(key !== undefined ? { keys: [key, ...(m.keys ?? [])] } : {}) };
    });
    if (options.outbox) {
      try {
        const ids = await options.outbox(withKeys as OutboxMessage[], req);
        return ids.map((outboxId) => json(202, { outboxId, topic, state: 'pending' }));
      } catch (error) {
        return withKeys.map(() => fromProblem(problemFromError(error, retryAfter)));
      }
    }
    const answers: Answer[] = [];
    let started;
    try {
      started = await producer!.get();
    } catch (error) {
      const p = problemFromError(error, retryAfter);
      // A producer that cannot start (broker unreachable…) is unavailable, whatever its error says.
      const unavailable =
        p.status >= 500 || p.status === 429
          ? p
          : problem(503, p.code, 'Unavailable', p.detail, { retryAfterSeconds: retryAfter });
      return withKeys.map(() => fromProblem(unavailable));
    }
    for (const message of withKeys) {
      try {
        const sent: SendResult = await started.send(message);
        answers.push(
          json(201, {
            msgId: sent.msgId,
            topic: sent.topic,
            brokerName: sent.brokerName,
            queueId: sent.queueId,
            queueOffset: sent.queueOffset,
          }),
        );
      } catch (error) {
        answers.push(fromProblem(problemFromError(error, retryAfter)));
      }
    }
    return answers;
  };

  /** 401/403/404 for one item, or undefined when it may go on. */
  const gate = async (req: Request, topic: string, tag: string | undefined): Promise<Problem | undefined> => {
    if (options.authorize) {
      const verdict = await options.authorize(req, topic, tag);
      if (verdict === 'unauthenticated')
        return problem(401, 'UNAUTHENTICATED', 'Unauthenticated', 'this request needs credentials', {
          headers: { 'WWW-Authenticate': options.wwwAuthenticate ?? 'Bearer' },
        });
      if (verdict !== true)
        return problem(
          403,
          'FORBIDDEN',
          'Forbidden',
          `not allowed to produce to topic "${topic}"${tag ? ` with tag "${tag}"` : ''}`,
        );
    }
    if (!knownTopic(topic))
      return problem(404, 'TOPIC_NOT_FOUND', 'Unknown topic', `topic "${topic}" is not served here`);
    return undefined;
  };

  /** Idempotency around `work`: replays, 409, 422, or runs it and stores a 2xx answer. */
  const idempotent = async (
    req: Request,
    key: string | undefined,
    work: () => Promise<Answer>,
  ): Promise<Answer & { replayed?: boolean }> => {
    if (key === undefined) return work();
    const fingerprint = createHash('sha256')
      .update(`${req.method} ${req.baseUrl}${req.path}\n${req.headers['content-type'] ?? ''}\n`)
      .update(
        Object.keys(req.headers)
          .filter((h) => h.startsWith('rocket-'))
          .sort()
          .map((h) => `${h}:${String(req.headers[h])}`)
          .join('\n'),
      )
      .update('\n')
      .update(bodyOf(req))
      .digest('hex');
    const begun = await store.begin(key, fingerprint);
    switch (begun.state) {
      case 'replay': {
        const r = begun.response;
        return {
          status: r.status,
          body: JSON.parse(r.body),
          contentType: r.contentType,
          headers: r.headers,
          replayed: true,
        };
      }
      case 'mismatch':
        return fromProblem(
          problem(
            422,
            'IDEMPOTENCY_KEY_REUSED',
            'Idempotency-Key reused',
            'this Idempotency-Key was used with a different request',
          ),
        );
      case 'in-flight':
        return fromProblem(
          problem(
            409,
            'IDEMPOTENCY_KEY_IN_FLIGHT',
            'Request in progress',
            'a request with this Idempotency-Key is still being processed',
            {
              retryAfterSeconds: retryAfter,
            },
          ),
        );
      case 'full':
        return fromProblem(
          problem(
            503,
            'IDEMPOTENCY_STORE_FULL',
            'Unavailable',
            'too many requests with an Idempotency-Key are in flight',
            {
              retryAfterSeconds: retryAfter,
            },
          ),
        );
      case 'new':
        break;
    }
    let answer: Answer;
    try {
      answer = await work();
    } catch (error) {
      await store.abandon(key);
      throw error;
    }
    if (answer.status >= 200 && answer.status < 300 && answer.keep !== false) {
      const stored: StoredResponse = {
        status: answer.status,
        body: JSON.stringify(answer.body),
        contentType: answer.contentType,
        headers: answer.headers,
      };
      await store.complete(key, stored);
    } else {
      await store.abandon(key);
    }
    return answer;
  };

  const reply = (res: Response, answer: Answer & { replayed?: boolean }): void => {
    for (const [name, value] of Object.entries(answer.headers)) res.set(name, value);
    if (answer.replayed) res.set(IDEMPOTENT_REPLAYED_HEADER, 'true');
    res.status(answer.status).type(answer.contentType).send(JSON.stringify(answer.body));
  };

  /** Wraps an async handler so it works on Express 4 (no promise support) as on 5. */
  const handle =
    (fn: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void => {
      fn(req, res).catch((error: unknown) => {
        if (error instanceof RequestProblem) sendProblem(res, error.problem);
        else next(error);
      });
    };

  const topicOf = (req: Request): string => {
    const topic = String(req.params.topic);
    try {
      validateUserTopic(topic);
    } catch (error) {
      throw new RequestProblem(
        problem(400, 'INVALID_TOPIC', 'Invalid topic', isRocketError(error) ? error.message : 'bad topic'),
      );
    }
    return topic;
  };

  router.post(
    '/topics/:topic/messages',
    requireType(false),
    refuseDeclaredTooLarge,
    readBody,
    handle(async (req, res) => {
      const topic = topicOf(req);
      const key = idempotencyKeyOf(req, MAX_IDEMPOTENCY_KEY_LENGTH);
      const raw = bodyOf(req);
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const fromHeaders = messageFromHeaders(req);
      let message: ParsedMessage;
      if (type === ENVELOPE_CONTENT_TYPE) {
        message = { ...fromHeaders, ...messageFromEnvelope(parseJson(raw), 'the envelope', maxBodyBytes) };
      } else {
        if (raw.byteLength === 0)
          throw new RequestProblem(
            problem(400, 'INVALID_REQUEST', 'Invalid request', 'the message body is empty'),
          );
        if (raw.byteLength > maxBodyBytes) throw tooLarge(raw.byteLength, maxBodyBytes);
        message = { ...fromHeaders, body: raw };
      }
      const refused = await gate(req, topic, message.tag);
      if (refused) return sendProblem(res, refused);
      reply(res, await idempotent(req, key, async () => (await deliver(req, topic, [message], [key]))[0]!));
    }),
  );

  router.post(
    '/topics/:topic/messages/batch',
    requireType(true),
    refuseDeclaredTooLarge,
    readBody,
    handle(async (req, res) => {
      const topic = topicOf(req);
      const key = idempotencyKeyOf(req, MAX_IDEMPOTENCY_KEY_LENGTH - 6);
      const parsed = parseJson(bodyOf(req));
      const items = (parsed as { messages?: unknown } | null)?.messages;
      if (!Array.isArray(items) || items.length === 0)
        throw new RequestProblem(
          problem(
            400,
            'INVALID_REQUEST',
            'Invalid request',
            'a batch is {"messages": [envelope, …]} with at least one message',
          ),
        );
      if (items.length > maxBatch)
        throw new RequestProblem(
          problem(
            413,
            'BATCH_TOO_LARGE',
            'Batch too large',
            `the batch has ${items.length} messages; at most ${maxBatch}`,
          ),
        );
      // Parse every item first: a malformed item gets its own 400 and the others still go.
      const results: Array<Answer | undefined> = new Array(items.length);
      const ready: Array<{ index: number; message: ParsedMessage }> = [];
      for (const [index, item] of items.entries()) {
        try {
          const message = messageFromEnvelope(item, `messages[${index}]`, maxBodyBytes);
          const refused = await gate(req, topic, message.tag);
          if (refused) results[index] = fromProblem(refused);
          else ready.push({ index, message });
        } catch (error) {
          // whatever one item does, the others still go: its failure is its own result
          results[index] = fromProblem(
            error instanceof RequestProblem ? error.problem : problemFromError(error, retryAfter),
          );
        }
      }
      const answer = await idempotent(req, key, async () => {
        const delivered =
          ready.length === 0
            ? []
            : await deliver(
                req,
                topic,
                ready.map((r) => r.message),
                ready.map((r) => (key === undefined ? undefined : `${key}-${r.index}`)),
              );
        ready.forEach((r, i) => (results[r.index] = delivered[i]));
        const answer = json(200, {
          results: results.map((r, index) => ({ index, status: r!.status, ...r!.body })),
        });
        // A batch with an item that may succeed on retry is not replayed: the retry sends again.
        answer.keep = !results.some((r) => r!.status >= 500 || r!.status === 429 || r!.status === 409);
        return answer;
      });
      reply(res, answer);
    }),
  );

  // Body-parser failures and anything unexpected: a problem, never a stack trace.
  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const e = error as { type?: string; status?: number };
    if (e?.type === 'entity.too.large')
      return sendProblem(
        res,
        problem(
          413,
          'PAYLOAD_TOO_LARGE',
          'Payload too large',
          `the request body is over ${maxRequestBytes} bytes`,
        ),
      );
    if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported')
      return sendProblem(
        res,
        problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported media type', 'unsupported content encoding'),
      );
    if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500)
      return sendProblem(
        res,
        problem(e.status, 'INVALID_REQUEST', 'Invalid request', 'the request body could not be read'),
      );
    sendProblem(res, problemFromError(error, retryAfter));
  });

  router.close = async () => {
    await producer?.close();
  };
  return router;
}
