import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { RocketError } from '../common/errors';
import {
  type Frame,
  FrameFlag,
  type FrameInput,
  MAX_ACCESS_KEY_BYTES,
  SIGNATURE_BYTES,
  encodeSignedFrameParts,
} from './frame-codec';

/**
 * Request signing (RocketMQ ACL 1.0's `AclClientRPCHook` signs each request with the account's
 * secret; RocketNest signs its own binary frame). A client given credentials sends every request it
 * originates as a SIGNED frame (`frame-codec.ts`) whose auth section holds its access key and
 *
 *     signature = HMAC-SHA256(secretKey, prefix ‖ accessKey ‖ header ‖ body)
 *
 * where `prefix` is 12 bytes, little-endian, of the frame as sent:
 *
 * | offset | size | field           |                                           |
 * |--------|------|-----------------|-------------------------------------------|
 * | 0      | 2    | code            | u16                                       |
 * | 2      | 4    | opaque          | u32                                       |
 * | 6      | 1    | flags           | u8, SIGNED included                       |
 * | 7      | 1    | accessKeyLength | u8                                        |
 * | 8      | 4    | headerLength    | u32, so header and body cannot trade bytes |
 *
 * The secret is UTF-8. Changing any byte of code, opaque, flags, access key, header or body breaks
 * the signature. Signing does not hide anything (use TLS for that) and does not stop a captured
 * frame from being replayed: it proves the sender holds the account's secret.
 */
export const SIGNATURE_PREFIX_BYTES = 12;

/** An account's credentials (RocketMQ `SessionCredentials`). The secret never leaves the client. */
export interface Credentials {
  accessKey: string;
  secretKey: string;
}

/** What the server established about a signed request, handed to request handlers (never the secret). */
export interface RequestAuth {
  /** The access key the frame names. */
  readonly accessKey: string;
  /** True when the server knows the key and the signature matches its secret. */
  readonly verified: boolean;
}

/** The server's way to find an account's secret; undefined for an unknown access key. */
export type SecretKeyLookup = (accessKey: string) => string | undefined;

function computeSignature(
  secretKey: Buffer,
  accessKey: Buffer,
  code: number,
  opaque: number,
  flags: number,
  header: Uint8Array,
  body: Uint8Array,
): Buffer {
  const prefix = Buffer.allocUnsafe(SIGNATURE_PREFIX_BYTES);
  prefix.writeUInt16LE(code, 0);
  prefix.writeUInt32LE(opaque, 2);
  prefix[6] = flags;
  prefix[7] = accessKey.length;
  prefix.writeUInt32LE(header.length, 8);
  return createHmac('sha256', secretKey)
    .update(prefix)
    .update(accessKey)
    .update(header)
    .update(body)
    .digest();
}

/** Checks credentials given as a client option; returns the encoded key and secret. */
function checkCredentials(owner: string, credentials: Credentials): { accessKey: Buffer; secretKey: Buffer } {
  const { accessKey, secretKey } = credentials ?? ({} as Credentials);
  if (typeof accessKey !== 'string' || typeof secretKey !== 'string' || secretKey.length === 0) {
    throw new RocketError(
      'INVALID_OPTION',
      `${owner} option credentials must be { accessKey: string, secretKey: string } with a non-empty secret`,
    );
  }
  const key = Buffer.from(accessKey, 'utf8');
  if (key.length === 0 || key.length > MAX_ACCESS_KEY_BYTES) {
    throw new RocketError(
      'INVALID_OPTION',
      `${owner} option credentials.accessKey must be 1..${MAX_ACCESS_KEY_BYTES} UTF-8 bytes; got ${key.length}`,
    );
  }
  return { accessKey: key, secretKey: Buffer.from(secretKey, 'utf8') };
}

/** Encodes a client's requests as SIGNED frames with one account's credentials. */
export class RequestSigner {
  private readonly accessKey: Buffer;
  private readonly secretKey: Buffer;

  constructor(credentials: Credentials, owner = 'remoting client') {
    const checked = checkCredentials(owner, credentials);
    this.accessKey = checked.accessKey;
    this.secretKey = checked.secretKey;
  }

  /** Like `encodeFrameParts`, plus the auth section; `frame.flags` must not include SIGNED. */
  encodeParts(frame: FrameInput, maxFrameBytes?: number): Buffer[] {
    const flags = frame.flags | FrameFlag.SIGNED;
    const signature = computeSignature(
      this.secretKey,
      this.accessKey,
      frame.code,
      frame.opaque,
      flags,
      frame.header,
      frame.body,
    );
    return encodeSignedFrameParts(frame, this.accessKey, signature, maxFrameBytes);
  }
}

/**
 * Checks the signature of SIGNED frames against the secret `lookup` gives for their access key, in
 * constant time (`timingSafeEqual`). An unknown key is checked against a random secret so it costs
 * what a known one does. Without a lookup nothing verifies (the server has no accounts) and no MAC is computed.
 */
export class SignatureVerifier {
  private readonly unknownSecret = randomBytes(32);

  constructor(private readonly lookup: SecretKeyLookup | undefined) {}

  /** The request's auth: undefined for an unsigned frame. */
  verify(frame: Frame): RequestAuth | undefined {
    const auth = frame.auth;
    if (auth === undefined) return undefined;
    const accessKey = auth.accessKey.toString('utf8');
    if (this.lookup === undefined) return { accessKey, verified: false };
    const secret = this.lookup(accessKey);
    const expected = computeSignature(
      secret === undefined ? this.unknownSecret : Buffer.from(secret, 'utf8'),
      auth.accessKey,
      frame.code,
      frame.opaque,
      frame.flags,
      frame.header,
      frame.body,
    );
    const matches = auth.signature.length === SIGNATURE_BYTES && timingSafeEqual(expected, auth.signature);
    return { accessKey, verified: secret !== undefined && matches };
  }
}
