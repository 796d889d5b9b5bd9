import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * RocketMQ 5's request signature (rocketmq-clients `Signature.java`, Apache
 * `DefaultAuthenticationContextBuilder`): every call carries
 *
 *   authorization: MQv2-HMAC-SHA1 Credential=<accessKey>, SignedHeaders=x-mq-date-time, Signature=<hex>
 *   x-mq-date-time: yyyyMMdd'T'HHmmss'Z'
 *
 * where the signature is HMAC-SHA1 keyed by the secret key over the date-time header's bytes, in
 * hex (upper case from the official clients; compared case-insensitively, as Apache compares the
 * decoded bytes). The date is not checked against the clock: the Java client writes local time
 * with a literal `Z`, so Apache does not check skew either.
 */
export const AUTHORIZATION_HEADER = 'authorization';
export const DATE_TIME_HEADER = 'x-mq-date-time';
export const SIGNATURE_ALGORITHM = 'MQv2-HMAC-SHA1';

export interface ParsedAuthorization {
  accessKey: string;
  signedHeaders: string;
  signatureHex: string;
}

/** The parts of an authorization header, or undefined when it is not RocketMQ 5's format. */
export function parseAuthorization(header: string): ParsedAuthorization | undefined {
  if (header.length > 1024 || !header.startsWith(`${SIGNATURE_ALGORITHM} `)) return undefined;
  const fields = new Map<string, string>();
  for (const part of header.slice(SIGNATURE_ALGORITHM.length + 1).split(',')) {
    const at = part.indexOf('=');
    if (at < 0) return undefined;
    fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const credential = fields.get('Credential');
  const signatureHex = fields.get('Signature');
  if (!credential || !signatureHex || !/^[0-9A-Fa-f]+$/.test(signatureHex)) return undefined;
  // Apache reads the access key up to the first '/', where older clients put a scope
  const accessKey = credential.split('/')[0]!;
  return { accessKey, signedHeaders: fields.get('SignedHeaders') ?? '', signatureHex };
}

/** The signature a client sends: upper-case hex HMAC-SHA1 of `dateTime` keyed by `secretKey`. */
export function signDateTime(secretKey: string, dateTime: string): string {
  return createHmac('sha1', secretKey).update(dateTime, 'utf8').digest('hex').toUpperCase();
}

/** Whether `signatureHex` is `dateTime` signed with `secretKey` (constant-time compare). */
export function verifySignature(secretKey: string, dateTime: string, signatureHex: string): boolean {
  const expected = createHmac('sha1', secretKey).update(dateTime, 'utf8').digest();
  const given = Buffer.from(signatureHex, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
