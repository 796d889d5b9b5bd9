import { createHmac, createSign, generateKeyPairSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isRocketError } from '../../src/common/errors';
import { bearerToken, jwtAuthorizer, verifyJwt } from '../../src/push/push-jwt';
import { PushCloseCode } from '../../src/push/push-protocol';
import type { PushRig } from './push-harness';
import { RawClient, startRig } from './push-harness';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function hs256(claims: Record<string, unknown>, secret = SECRET, alg = 'HS256'): string {
  const head = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
function rs256(claims: Record<string, unknown>): string {
  const head = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createSign('sha256').update(head).sign(rsa.privateKey).toString('base64url')}`;
}

const nowS = (): number => Math.floor(Date.now() / 1000);

function deniedFor(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isRocketError(error, 'ACCESS_DENIED')) return error.message;
    throw error;
  }
  throw new Error('not denied');
}

describe('verifyJwt', () => {
  test('HS256: a good token gives its claims; a bad signature, expiry, nbf, issuer and audience are denied', () => {
    expect(verifyJwt(hs256({ sub: 'u1', topics: ['a'] }), { key: SECRET })).toMatchObject({ sub: 'u1' });
    expect(
      deniedFor(() =>
        verifyJwt(hs256({ sub: 'u1' }, 'another-secret-that-is-long-enough-xx'), { key: SECRET }),
      ),
    ).toMatch(/signature/);
    expect(deniedFor(() => verifyJwt(hs256({ exp: nowS() - 60 }), { key: SECRET }))).toMatch(/expired/);
    expect(verifyJwt(hs256({ exp: nowS() - 2 }), { key: SECRET })).toBeDefined(); // within the 5 s tolerance
    expect(deniedFor(() => verifyJwt(hs256({ nbf: nowS() + 60 }), { key: SECRET }))).toMatch(/not valid yet/);
    expect(deniedFor(() => verifyJwt(hs256({ iss: 'x' }), { key: SECRET, issuer: 'y' }))).toMatch(/issuer/);
    expect(verifyJwt(hs256({ aud: ['p', 'q'] }), { key: SECRET, audience: 'q' })).toBeDefined();
    expect(deniedFor(() => verifyJwt(hs256({ aud: 'p' }), { key: SECRET, audience: 'q' }))).toMatch(
      /audience/,
    );
    expect(deniedFor(() => verifyJwt('a.b', { key: SECRET }))).toMatch(/three/);
    expect(deniedFor(() => verifyJwt('!!.!!.!!', { key: SECRET }))).toMatch(/base64url JSON/);
    expect(deniedFor(() => verifyJwt('x'.repeat(9000), { key: SECRET }))).toMatch(/characters/);
  });

  test('the key decides the algorithm: alg "none" and HS256-signed-with-the-public-key are refused', () => {
    const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(verifyJwt(rs256({ sub: 'r' }), { key: publicPem })).toMatchObject({ sub: 'r' });
    expect(verifyJwt(rs256({ sub: 'r' }), { key: rsa.publicKey })).toMatchObject({ sub: 'r' });
    const none = `${b64({ alg: 'none' })}.${b64({ sub: 'evil' })}.`;
    expect(deniedFor(() => verifyJwt(none, { key: publicPem }))).toMatch(/algorithm/);
    // the classic confusion: an HS256 token whose HMAC key is the public key's PEM text
    const confused = hs256({ sub: 'evil' }, publicPem);
    expect(deniedFor(() => verifyJwt(confused, { key: publicPem }))).toMatch(/algorithm/);
    // and an RS256 token is no good against a shared secret
    expect(deniedFor(() => verifyJwt(rs256({}), { key: SECRET }))).toMatch(/algorithm/);
    expect(() => verifyJwt(hs256({}), { key: 'short' })).toThrow(/32 bytes/);
  });

  test('bearerToken reads ?token= first, then the Authorization header', () => {
    const req = (url: string, authorization?: string): IncomingMessage =>
      ({ url, headers: authorization ? { authorization } : {} }) as IncomingMessage;
    expect(bearerToken(req('/push?token=abc'))).toBe('abc');
    expect(bearerToken(req('/push', 'Bearer xyz'))).toBe('xyz');
    expect(bearerToken(req('/push'))).toBeUndefined();
  });
});

describe('jwtAuthorizer on a push server', () => {
  let rig: PushRig;
  const clients: RawClient[] = [];
  beforeEach(async () => {
    rig = await startRig({
      topics: [
        { topic: 'Orders', queueCount: 1 },
        { topic: 'Payroll', queueCount: 1 },
      ],
      server: jwtAuthorizer({ key: SECRET }),
    });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await rig.close();
  });

  test('no token or a bad token is closed at upgrade with 4500; the reason says why', async () => {
    const none = await RawClient.connect(rig.url);
    clients.push(none);
    expect(await none.closedWith()).toEqual({
      code: PushCloseCode.UNAUTHORIZED,
      reason: expect.stringMatching(/no token/),
    });
    const expired = await RawClient.connect(rig.url, {
      token: hs256({ topics: ['Orders'], exp: nowS() - 3600 }),
    });
    clients.push(expired);
    expect(await expired.closedWith()).toEqual({
      code: PushCloseCode.UNAUTHORIZED,
      reason: 'the token has expired',
    });
    expect(none.of('welcome')).toEqual([]);
    expect(rig.server.metrics()).toMatchObject({ connectionsRefused: 2, connections: 0 });
  });

  test('topics listed in the claim are allowed, others refused with permission_denied', async () => {
    const c = await RawClient.connect(rig.url, { token: hs256({ sub: 'u', topics: ['Orders'] }) });
    clients.push(c);
    c.send({ type: 'subscribe', id: 'o', topic: 'Orders' });
    c.send({ type: 'subscribe', id: 'p', topic: 'Payroll' });
    await c.next('subscribed', 'o');
    const refused = await c.next('error', 'p');
    expect(refused).toMatchObject({
      code: 'permission_denied',
      reason: 'the token does not allow topic "Payroll"',
    });
    await rig.send({ topic: 'Orders', body: 'ok' });
    expect((await c.next('message', 'o')).body).toBe('ok');
  });
});
