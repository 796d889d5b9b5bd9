import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { type AccessNeed, AccessControl, type AclConfig, holds } from '../../src/broker/access-control';
import { isRocketError } from '../../src/common/errors';
import { MemoryFileSystem } from '../../src/store/file-system';

const config: AclConfig = {
  globalWhiteRemoteAddresses: ['10.0.0.7', '192.168.*'],
  accounts: [
    { accessKey: 'admin', secretKey: 'a', admin: true },
    {
      accessKey: 'app',
      secretKey: 'b',
      defaultTopicPerm: 'SUB',
      defaultGroupPerm: 'DENY',
      topicPerms: { pubOnly: 'PUB', subOnly: 'SUB', both: 'PUB|SUB', denied: 'DENY' },
      groupPerms: { CG: 'SUB', PG: 'PUB', G2: 'PUB|SUB', blocked: 'DENY' },
    },
    { accessKey: 'bare', secretKey: 'c' },
    { accessKey: 'open', secretKey: 'd', defaultTopicPerm: 'PUB|SUB', topicPerms: { secret: 'DENY' } },
  ],
};
const acl = AccessControl.parse(config, 'acl.json');

const topic = (name: string, perm: 'PUB' | 'SUB'): AccessNeed => ({ kind: 'topic', name, perm });
const group = (name: string, perm: 'PUB' | 'SUB'): AccessNeed => ({ kind: 'group', name, perm });
const ADMIN: AccessNeed = { kind: 'admin' };
const ACCOUNT: AccessNeed = { kind: 'account' };

describe('permission decision table (holds)', () => {
  const rows: Array<[string, string, AccessNeed, boolean]> = [
    // explicit topic entries: PUB, SUB, PUB|SUB, DENY
    ['PUB entry allows PUB', 'app', topic('pubOnly', 'PUB'), true],
    ['PUB entry refuses SUB', 'app', topic('pubOnly', 'SUB'), false],
    ['SUB entry allows SUB', 'app', topic('subOnly', 'SUB'), true],
    ['SUB entry refuses PUB', 'app', topic('subOnly', 'PUB'), false],
    ['PUB|SUB entry allows PUB', 'app', topic('both', 'PUB'), true],
    ['PUB|SUB entry allows SUB', 'app', topic('both', 'SUB'), true],
    ['DENY entry refuses PUB', 'app', topic('denied', 'PUB'), false],
    ['DENY entry refuses SUB despite a SUB default', 'app', topic('denied', 'SUB'), false],
    // defaults
    ['default topic SUB allows SUB on an unlisted topic', 'app', topic('other', 'SUB'), true],
    ['default topic SUB refuses PUB on an unlisted topic', 'app', topic('other', 'PUB'), false],
    ['default group DENY refuses an unlisted group', 'app', group('unlisted', 'SUB'), false],
    ['absent defaults are DENY (topic)', 'bare', topic('anything', 'SUB'), false],
    ['absent defaults are DENY (group)', 'bare', group('anything', 'PUB'), false],
    ['DENY entry wins over a PUB|SUB default', 'open', topic('secret', 'PUB'), false],
    ['PUB|SUB default allows the rest', 'open', topic('orders', 'PUB'), true],
    // group entries
    ['group SUB allows a consumer', 'app', group('CG', 'SUB'), true],
    ['group SUB refuses a producer', 'app', group('CG', 'PUB'), false],
    ['group PUB allows a producer', 'app', group('PG', 'PUB'), true],
    ['group PUB|SUB allows both', 'app', group('G2', 'SUB'), true],
    ['group DENY refuses', 'app', group('blocked', 'SUB'), false],
    // retry topics are checked as SUB on their group
    ['retry topic of a SUB group: SUB allowed', 'app', topic('%RETRY%CG', 'SUB'), true],
    ['retry topic of a SUB group: PUB (send back) allowed', 'app', topic('%RETRY%CG', 'PUB'), true],
    ['retry topic of a PUB-only group refused', 'app', topic('%RETRY%PG', 'SUB'), false],
    ['retry topic ignores the topic default', 'open', topic('%RETRY%CG', 'SUB'), false],
    // admin and account-level needs
    ['admin request refused to a non-admin', 'app', ADMIN, false],
    ['admin request allowed to an admin', 'admin', ADMIN, true],
    ['admin holds every topic permission', 'admin', topic('denied', 'PUB'), true],
    ['admin holds every group permission', 'admin', group('blocked', 'SUB'), true],
    ['any account: allowed to a bare account', 'bare', ACCOUNT, true],
  ];
  test.each(rows)('%s', (_name, key, need, expected) => {
    expect(holds(acl.account(key)!, need)).toBe(expected);
  });
});

describe('authorize: every outcome', () => {
  const ip = '127.0.0.1';
  const signedBy = (accessKey: string, verified = true) => ({ accessKey, verified });
  const rows: Array<
    [string, Parameters<AccessControl['authorize']>[0], ReturnType<AccessControl['authorize']>]
  > = [
    [
      'white-listed exact address, unsigned',
      { remoteIp: '10.0.0.7', needs: [ADMIN] },
      { allowed: true, reason: 'white-listed' },
    ],
    [
      'white-listed wildcard, IPv4-mapped IPv6',
      { remoteIp: '::ffff:192.168.3.4', needs: [topic('denied', 'PUB')] },
      { allowed: true, reason: 'white-listed' },
    ],
    ['unsigned', { remoteIp: ip, needs: [ACCOUNT] }, { allowed: false, reason: 'unsigned' }],
    [
      'unknown access key',
      { remoteIp: ip, auth: signedBy('ghost', false), needs: [ACCOUNT] },
      { allowed: false, reason: 'unknown-account' },
    ],
    [
      'known key, bad signature',
      { remoteIp: ip, auth: signedBy('app', false), needs: [ACCOUNT] },
      { allowed: false, reason: 'bad-signature' },
    ],
    [
      'admin account, admin request',
      { remoteIp: ip, auth: signedBy('admin'), needs: [ADMIN] },
      { allowed: true, reason: 'admin' },
    ],
    [
      'non-admin, admin request',
      { remoteIp: ip, auth: signedBy('app'), needs: [ADMIN] },
      { allowed: false, reason: 'not-admin', need: ADMIN },
    ],
    [
      'every need held',
      { remoteIp: ip, auth: signedBy('app'), needs: [topic('both', 'SUB'), group('CG', 'SUB')] },
      { allowed: true, reason: 'granted' },
    ],
    [
      'one need missing (the group)',
      { remoteIp: ip, auth: signedBy('app'), needs: [topic('both', 'SUB'), group('blocked', 'SUB')] },
      { allowed: false, reason: 'not-granted', need: group('blocked', 'SUB') },
    ],
    [
      'an address outside the white list is checked',
      { remoteIp: '192.169.0.1', needs: [ACCOUNT] },
      { allowed: false, reason: 'unsigned' },
    ],
  ];
  test.each(rows)('%s', (_name, request, decision) => {
    expect(acl.authorize(request)).toEqual(decision);
  });

  test('secrets are only reachable through secretKeyOf, never on accounts', () => {
    expect(acl.secretKeyOf('app')).toBe('b');
    expect(acl.secretKeyOf('ghost')).toBeUndefined();
    expect(JSON.stringify([...acl.accessKeys.map((k) => acl.account(k))])).not.toMatch(/secretKey/);
    expect(acl.accessKeys).toEqual(['admin', 'app', 'bare', 'open']);
  });
});

describe('ACL file parsing', () => {
  const account = { accessKey: 'k1', secretKey: 's1' };
  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', [], /acl\.json: the document must be a JSON object/],
    ['no accounts array', {}, /field accounts must be an array/],
    [
      'unknown top-level field',
      { accounts: [], acounts: [] },
      /the document field acounts is not a known field/,
    ],
    ['account not an object', { accounts: ['x'] }, /account #0 must be an object/],
    ['missing accessKey', { accounts: [{ secretKey: 's' }] }, /account #0 field accessKey must be a string/],
    [
      'empty secretKey',
      { accounts: [{ accessKey: 'k1', secretKey: '' }] },
      /account #0 \("k1"\) field secretKey/,
    ],
    ['duplicate accessKey', { accounts: [account, account] }, /account #1 \("k1"\) field accessKey repeats/],
    [
      'admin not boolean',
      { accounts: [{ ...account, admin: 'yes' }] },
      /\("k1"\) field admin must be true or false/,
    ],
    [
      'bad default perm',
      { accounts: [{ ...account, defaultTopicPerm: 'READ' }] },
      /\("k1"\) field defaultTopicPerm must be one of PUB, SUB, PUB\|SUB, DENY \(got "READ"\)/,
    ],
    [
      'bad topic perm',
      { accounts: [{ ...account, topicPerms: { orders: 'SUB|PUB|X' } }] },
      /\("k1"\) field topicPerms\.orders must be one of/,
    ],
    [
      'groupPerms not an object',
      { accounts: [{ ...account, groupPerms: ['CG'] }] },
      /field groupPerms must be an object/,
    ],
    [
      'unknown account field',
      { accounts: [{ ...account, whiteRemoteAddress: '*' }] },
      /field whiteRemoteAddress is not a known field/,
    ],
    [
      'bad white-list entry',
      { accounts: [], globalWhiteRemoteAddresses: ['10.0.0.1/8'] },
      /globalWhiteRemoteAddresses\[0\] must be an IP address or a pattern/,
    ],
  ];
  test.each(bad)('%s → INVALID_OPTION naming file, account and field', (_name, json, message) => {
    let error: unknown;
    try {
      AccessControl.parse(json, 'acl.json');
    } catch (e) {
      error = e;
    }
    expect(isRocketError(error, 'INVALID_OPTION')).toBe(true);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toMatch(/s1/);
  });

  test('load: missing file, invalid JSON, and a good file', () => {
    const fs = new MemoryFileSystem();
    expect(() => AccessControl.load('/etc/acl.json', fs)).toThrow(/ACL file \/etc\/acl\.json does not exist/);
    fs.mkdirp('/etc');
    fs.writeFileAtomic('/etc/acl.json', Buffer.from('{"accounts": [,]}'));
    expect(() => AccessControl.load('/etc/acl.json', fs)).toThrow(
      /ACL file \/etc\/acl\.json is not valid JSON/,
    );
    fs.writeFileAtomic('/etc/acl.json', Buffer.from(JSON.stringify(config)));
    const loaded = AccessControl.load('/etc/acl.json', fs);
    expect(loaded.accessKeys).toEqual(['admin', 'app', 'bare', 'open']);
    expect(loaded.isWhiteListed('192.168.0.9')).toBe(true);
    expect(loaded.isWhiteListed('192.16.0.9')).toBe(false);
  });
});

describe('docs/security.md', () => {
  test('the example ACL file parses and means what the page says', () => {
    const page = readFileSync(path.join(__dirname, '../../../../docs/security.md'), 'utf8');
    const example = /```json\n([\s\S]*?)```/.exec(page)![1]!;
    const documented = AccessControl.parse(JSON.parse(example), 'docs/security.md');
    const allowed = (accessKey: string, needs: AccessNeed[], remoteIp = '127.0.0.1') =>
      documented.authorize({ remoteIp, auth: { accessKey, verified: true }, needs }).allowed;
    expect(allowed('order-service', [topic('orders', 'PUB'), group('order-producers', 'PUB')])).toBe(true);
    expect(allowed('order-service', [topic('orders', 'SUB')])).toBe(false);
    expect(allowed('analytics', [topic('anything', 'SUB'), group('any-group', 'SUB')])).toBe(true);
    expect(allowed('analytics', [topic('payments', 'SUB')])).toBe(false);
    expect(allowed('ops', [ADMIN])).toBe(true);
    expect(documented.authorize({ remoteIp: '192.168.1.20', needs: [ADMIN] }).allowed).toBe(true);
  });
});
