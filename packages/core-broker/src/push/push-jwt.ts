import { createHmac, createPublicKey, type KeyObject, timingSafeEqual, verify } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { PushAuthenticate, PushAuthorize } from './push-options';

/** Longest token accepted, in characters. */
export const MAX_JWT_LENGTH = 8192;
/** Leeway on `exp` and `nbf` for clocks that disagree a little. */
export const DEFAULT_JWT_CLOCK_TOLERANCE_MS = 5_000;
/** Claim listing the topics a token may read. */
export const DEFAULT_JWT_TOPICS_CLAIM = 'topics';

export type JwtAlgorithm = 'HS256' | 'RS256';

/** A token's payload. */
export type JwtClaims = Record<string, unknown>;

export interface JwtVerifyOptions {
  /** HS256: the shared secret (string or bytes). RS256: the public key (PEM text or a `KeyObject`). */
  key: string | Buffer | KeyObject;
  /** Algorithm the key is for; default: RS256 for a PEM or public `KeyObject`, HS256 otherwise. Only that one is accepted. */
  algorithm?: JwtAlgorithm;
  /** Required `iss`, when set. */
  issuer?: string;
  /** Required in `aud` (a string or an array), when set. */
  audience?: string;
  /** Default {@link DEFAULT_JWT_CLOCK_TOLERANCE_MS}. */
  clockToleranceMs?: number;
  clock?: Clock;
}

/**
 * Verifies a compact JWS (HS256 or RS256) with node:crypto and returns its claims. Checks the
 * signature with the one algorithm the key is for (a token's `alg` cannot choose another), then
 * `exp`, `nbf`, `iss` and `aud`. Any failure throws `ACCESS_DENIED` saying which check failed.
 */
export function verifyJwt(token: string, options: JwtVerifyOptions): JwtClaims {
  const { algorithm, key } = keyOf(options);
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_JWT_LENGTH) {
    throw denied(`the token must be 1 to ${MAX_JWT_LENGTH} characters`);
  }
  const parts = token.split('.');
  if (parts.length !== 3) throw denied('the token is not a compact JWS (three dot-separated parts)');
  const [h, p, s] = parts as [string, string, string];
  const header = json(h, 'header');
  if (header.alg !== algorithm)
    throw denied(`the token's algorithm is ${String(header.alg)}, expected ${algorithm}`);
  const signed = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s, 'base64url');
  const ok =
    algorithm === 'HS256'
      ? timingSafeEqualLength(
          createHmac('sha256', key as Buffer | KeyObject)
            .update(signed)
            .digest(),
          signature,
        )
      : verify('sha256', signed, key as KeyObject, signature);
  if (!ok) throw denied('bad token signature');
  const claims = json(p, 'payload');
  const clock = options.clock ?? systemClock;
  const tolerance = options.clockToleranceMs ?? DEFAULT_JWT_CLOCK_TOLERANCE_MS;
  const nowS = clock.now() / 1000;
  if (claims.exp !== undefined && (typeof claims.exp !== 'number' || nowS > claims.exp + tolerance / 1000)) {
    throw denied('the token has expired');
  }
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || nowS < claims.nbf - tolerance / 1000)) {
    throw denied('the token is not valid yet');
  }
  if (options.issuer !== undefined && claims.iss !== options.issuer)
    throw denied('the token has another issuer');
  if (options.audience !== undefined) {
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(options.audience)) throw denied('the token is for another audience');
  }
  return claims;
}

export interface JwtAuthorizerOptions extends JwtVerifyOptions {
  /** Claim holding the array of topics the token may read (`"*"` for all). Default {@link DEFAULT_JWT_TOPICS_CLAIM}. */
  topicsClaim?: string;
}

/**
 * The push server's `authenticate` and `authorize` hooks for bearer JWTs. The token comes from
 * the `token` query parameter (what browsers can send) or an `Authorization: Bearer` header.
 * `authenticate` refuses connections without a valid token (closed with 4500); `authorize`
 * allows a subscription when the topic is listed in the topics claim and the token is still valid.
 *
 * ```ts
 * new PushServer({ transport, ...jwtAuthorizer({ key: process.env.PUSH_SECRET! }) });
 * ```
 */
export function jwtAuthorizer(options: JwtAuthorizerOptions): {
  authenticate: PushAuthenticate;
  authorize: PushAuthorize;
} {
  keyOf(options); // fail now on a bad key, not at the first connection
  const claimName = options.topicsClaim ?? DEFAULT_JWT_TOPICS_CLAIM;
  const claimsOf = (request: IncomingMessage): JwtClaims => {
    const token = bearerToken(request);
    if (token === undefined) throw denied('no token: pass ?token= or an Authorization: Bearer header');
    return verifyJwt(token, options); // verified each time: a token may expire while connected
  };
  return {
    authenticate: (request) => {
      try {
        claimsOf(request);
        return true;
      } catch (error) {
        return { reason: (error as Error).message };
      }
    },
    authorize: (request, { topic }) => {
      let claims: JwtClaims;
      try {
        claims = claimsOf(request);
      } catch (error) {
        return { reason: (error as Error).message };
      }
      const topics = claims[claimName];
      if (!Array.isArray(topics)) return { reason: `the token has no "${claimName}" claim listing topics` };
      if (topics.includes(topic) || topics.includes('*')) return true;
      return { reason: `the token does not allow topic "${topic}"` };
    },
  };
}

/** The bearer token of an upgrade request: `?token=` first, then `Authorization: Bearer`. */
export function bearerToken(request: IncomingMessage): string | undefined {
  const url = request.url ?? '';
  const q = url.indexOf('?');
  if (q >= 0) {
    const fromQuery = new URLSearchParams(url.slice(q + 1)).get('token');
    if (fromQuery) return fromQuery;
  }
  const header = request.headers.authorization;
  if (header && /^bearer /i.test(header)) return header.slice(7).trim();
  return undefined;
}

function keyOf(options: JwtVerifyOptions): { algorithm: JwtAlgorithm; key: Buffer | KeyObject } {
  const raw = options.key;
  const pem = typeof raw === 'string' && raw.includes('-----BEGIN');
  const isKeyObject = typeof raw === 'object' && raw !== null && !Buffer.isBuffer(raw);
  const algorithm: JwtAlgorithm =
    options.algorithm ?? (pem || (isKeyObject && (raw as KeyObject).type !== 'secret') ? 'RS256' : 'HS256');
  if (algorithm === 'HS256') {
    if (pem || (isKeyObject && (raw as KeyObject).type !== 'secret')) {
      throw new RocketError('INVALID_OPTION', 'HS256 needs a shared secret, not a public key');
    }
    const secret = isKeyObject ? (raw as KeyObject) : Buffer.from(raw as string | Buffer);
    if (!isKeyObject && (secret as Buffer).length < 32) {
      throw new RocketError('INVALID_OPTION', 'an HS256 secret must be at least 32 bytes');
    }
    return { algorithm, key: secret };
  }
  if (algorithm !== 'RS256')
    throw new RocketError('INVALID_OPTION', `unsupported JWT algorithm ${String(algorithm)}`);
  let key: KeyObject;
  try {
    key = isKeyObject ? (raw as KeyObject) : createPublicKey(raw as string | Buffer);
  } catch (error) {
    throw new RocketError('INVALID_OPTION', 'the RS256 key is not a PEM public key', { cause: error });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new RocketError('INVALID_OPTION', 'RS256 needs an RSA key');
  return { algorithm, key };
}

function json(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw denied(`the token's ${what} is not base64url JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw denied(`the token's ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function timingSafeEqualLength(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function denied(reason: string): RocketError {
  return new RocketError('ACCESS_DENIED', reason);
}
