import { RocketError } from '../common/errors';
import { RETRY_TOPIC_PREFIX } from '../message/validation';
import { type StoreFileSystem, nodeFileSystem } from '../store/file-system';

/**
 * Access control lists (RocketMQ ACL 1.0, the "plain access validator" of `plain_acl.yml`, as a
 * JSON file here). Accounts have a secret, an admin flag, and permissions on topics and groups; a
 * request must be signed by an account (`request-signature.ts`) that holds every permission the
 * request needs. Pure: the broker server maps requests to {@link AccessNeed}s and asks
 * {@link AccessControl.authorize}. The format is documented in docs/security.md.
 */

/** Permission bits of a topic or group entry (RocketMQ `Permission`). */
export const AclPerm = {
  /** Nothing, even when a default would grant it. */
  DENY: 0,
  /** Send to the topic; be a producer of the group. */
  PUB: 0b01,
  /** Consume from the topic; be a consumer of the group. */
  SUB: 0b10,
} as const;

/** A permission as written in the ACL file. */
export type AclPermName = 'PUB' | 'SUB' | 'PUB|SUB' | 'DENY';

const PERM_NAMES: Record<AclPermName, number> = {
  PUB: AclPerm.PUB,
  SUB: AclPerm.SUB,
  'PUB|SUB': AclPerm.PUB | AclPerm.SUB,
  DENY: AclPerm.DENY,
};

/** One account as written in the ACL file. */
export interface AclAccountConfig {
  accessKey: string;
  secretKey: string;
  /** Admin accounts may do everything, admin requests included (RocketMQ `admin`). Default false. */
  admin?: boolean;
  /** Permission on topics not in `topicPerms` (RocketMQ `defaultTopicPerm`). Default `DENY`. */
  defaultTopicPerm?: AclPermName;
  /** Permission on groups not in `groupPerms` (RocketMQ `defaultGroupPerm`). Default `DENY`. */
  defaultGroupPerm?: AclPermName;
  /** Permission by topic name (RocketMQ `topicPerms`, `topic=PERM` there). Default none. */
  topicPerms?: Record<string, AclPermName>;
  /** Permission by group name (RocketMQ `groupPerms`). Default none. */
  groupPerms?: Record<string, AclPermName>;
}

/** The ACL file. */
export interface AclConfig {
  /**
   * Remote addresses whose requests skip the ACL altogether, signed or not (RocketMQ
   * `globalWhiteRemoteAddresses`): exact IPs or patterns where `*` stands for any characters
   * (`10.0.*`, `*`). Default none.
   */
  globalWhiteRemoteAddresses?: string[];
  accounts: AclAccountConfig[];
}

/** An account as the broker holds it (no secret). */
export interface AclAccount {
  readonly accessKey: string;
  readonly admin: boolean;
  readonly defaultTopicPerm: number;
  readonly defaultGroupPerm: number;
  readonly topicPerms: ReadonlyMap<string, number>;
  readonly groupPerms: ReadonlyMap<string, number>;
}

/** A permission one request needs. */
export type AccessNeed =
  | { kind: 'topic'; name: string; perm: 'PUB' | 'SUB' }
  | { kind: 'group'; name: string; perm: 'PUB' | 'SUB' }
  /** An admin request (topic management, DLQ resend…). */
  | { kind: 'admin' }
  /** Any account whose signature verifies. */
  | { kind: 'account' };

/** Why a request was allowed or refused. The reason is for the broker; clients only learn "access denied". */
export type AccessDecision =
  | { allowed: true; reason: 'white-listed' | 'admin' | 'granted' }
  | {
      allowed: false;
      reason: 'unsigned' | 'unknown-account' | 'bad-signature' | 'not-admin' | 'not-granted';
      /** The first need the account lacks (for `not-admin` and `not-granted`). */
      need?: AccessNeed;
    };

/** A request as the ACL sees it. */
export interface AccessRequest {
  /** IP address of the peer, for the white list. */
  remoteIp: string;
  /** Absent for an unsigned request. */
  auth?: { accessKey: string; verified: boolean };
  needs: readonly AccessNeed[];
}

/**
 * Whether `account` holds `need` (no signature or white-list check: see `authorize`). Admins hold
 * everything. A retry topic (`%RETRY%group`) needs SUB on its group, whatever the operation, as
 * RocketMQ checks retry topics against the group. An explicit entry replaces the default, so a
 * `DENY` entry wins over a generous default.
 */
export function holds(account: AclAccount, need: AccessNeed): boolean {
  if (account.admin) return true;
  switch (need.kind) {
    case 'account':
      return true;
    case 'admin':
      return false;
    case 'topic':
      if (need.name.startsWith(RETRY_TOPIC_PREFIX)) {
        return holds(account, {
          kind: 'group',
          name: need.name.slice(RETRY_TOPIC_PREFIX.length),
          perm: 'SUB',
        });
      }
      return permits(account.topicPerms.get(need.name) ?? account.defaultTopicPerm, need.perm);
    case 'group':
      return permits(account.groupPerms.get(need.name) ?? account.defaultGroupPerm, need.perm);
  }
}

function permits(owned: number, needed: 'PUB' | 'SUB'): boolean {
  const bit = PERM_NAMES[needed];
  return (owned & bit) === bit;
}

/** A loaded ACL: accounts by access key and the white list. Immutable. */
export class AccessControl {
  private readonly accounts: ReadonlyMap<string, AclAccount>;
  private readonly secrets: ReadonlyMap<string, string>;
  private readonly whiteList: readonly RegExp[];

  private constructor(accounts: Map<string, AclAccount>, secrets: Map<string, string>, whiteList: RegExp[]) {
    this.accounts = accounts;
    this.secrets = secrets;
    this.whiteList = whiteList;
  }

  /** Reads and parses an ACL JSON file; `INVALID_OPTION` names the file, account and field at fault. */
  static load(file: string, fs: StoreFileSystem = nodeFileSystem): AccessControl {
    let bytes: Buffer | undefined;
    try {
      bytes = fs.readFile(file);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new RocketError('INVALID_OPTION', `ACL file ${file} cannot be read: ${why}`, { cause });
    }
    if (bytes === undefined) throw new RocketError('INVALID_OPTION', `ACL file ${file} does not exist`);
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new RocketError('INVALID_OPTION', `ACL file ${file} is not valid JSON: ${why}`, { cause });
    }
    return AccessControl.parse(json, file);
  }

  /** Builds an ACL from the file's parsed JSON; `source` names it in errors. */
  static parse(json: unknown, source = 'ACL config'): AccessControl {
    const fail = (where: string, what: string): never => {
      throw new RocketError('INVALID_OPTION', `ACL file ${source}: ${where} ${what}`);
    };
    if (!isObject(json)) return fail('the document', 'must be a JSON object with an "accounts" array');
    checkKeys(json, ['accounts', 'globalWhiteRemoteAddresses'], 'the document', fail);
    const white = json.globalWhiteRemoteAddresses ?? [];
    if (!Array.isArray(white)) return fail('field globalWhiteRemoteAddresses', 'must be an array of strings');
    const whiteList = white.map((pattern: unknown, i) => {
      if (typeof pattern !== 'string' || !/^[0-9A-Fa-f.:*]+$/.test(pattern)) {
        return fail(
          `globalWhiteRemoteAddresses[${i}]`,
          `must be an IP address or a pattern of digits, '.', ':' and '*' (got ${JSON.stringify(pattern)})`,
        );
      }
      return addressPattern(pattern);
    });
    if (!Array.isArray(json.accounts)) return fail('field accounts', 'must be an array of accounts');
    const accounts = new Map<string, AclAccount>();
    const secrets = new Map<string, string>();
    json.accounts.forEach((raw: unknown, i) => {
      const where = (field: string): string =>
        `account #${i}${isObject(raw) && typeof raw.accessKey === 'string' ? ` ("${raw.accessKey}")` : ''} field ${field}`;
      if (!isObject(raw)) return fail(`account #${i}`, 'must be an object');
      checkKeys(raw, ACCOUNT_FIELDS, `account #${i}`, fail);
      const { accessKey, secretKey } = raw;
      if (typeof accessKey !== 'string' || accessKey === '' || Buffer.byteLength(accessKey) > 255) {
        return fail(where('accessKey'), 'must be a string of 1..255 UTF-8 bytes');
      }
      if (accounts.has(accessKey)) return fail(where('accessKey'), 'repeats an earlier account');
      if (typeof secretKey !== 'string' || secretKey === '') {
        return fail(where('secretKey'), 'must be a non-empty string');
      }
      if (raw.admin !== undefined && typeof raw.admin !== 'boolean') {
        return fail(where('admin'), 'must be true or false');
      }
      const perm = (field: string, value: unknown): number => {
        if (typeof value === 'string' && Object.prototype.hasOwnProperty.call(PERM_NAMES, value)) {
          return PERM_NAMES[value as AclPermName];
        }
        return fail(where(field), `must be one of PUB, SUB, PUB|SUB, DENY (got ${JSON.stringify(value)})`);
      };
      const perms = (field: string, value: unknown): Map<string, number> => {
        if (value === undefined) return new Map();
        if (!isObject(value)) return fail(where(field), 'must be an object of name: permission');
        return new Map(Object.entries(value).map(([name, p]) => [name, perm(`${field}.${name}`, p)]));
      };
      accounts.set(accessKey, {
        accessKey,
        admin: raw.admin === true,
        defaultTopicPerm:
          raw.defaultTopicPerm === undefined ? AclPerm.DENY : perm('defaultTopicPerm', raw.defaultTopicPerm),
        defaultGroupPerm:
          raw.defaultGroupPerm === undefined ? AclPerm.DENY : perm('defaultGroupPerm', raw.defaultGroupPerm),
        topicPerms: perms('topicPerms', raw.topicPerms),
        groupPerms: perms('groupPerms', raw.groupPerms),
      });
      secrets.set(accessKey, secretKey);
    });
    return new AccessControl(accounts, secrets, whiteList);
  }

  /** Access keys of the accounts, in file order. */
  get accessKeys(): string[] {
    return [...this.accounts.keys()];
  }

  /** The account of an access key, without its secret. */
  account(accessKey: string): AclAccount | undefined {
    return this.accounts.get(accessKey);
  }

  /** The secret of an access key, for the remoting server's signature check only. */
  secretKeyOf(accessKey: string): string | undefined {
    return this.secrets.get(accessKey);
  }

  /** True when requests from `ip` skip the ACL. IPv4-mapped IPv6 addresses match as IPv4. */
  isWhiteListed(ip: string): boolean {
    const v4 = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
    return this.whiteList.some((p) => p.test(ip) || p.test(v4));
  }

  /**
   * The decision for one request: white-listed addresses pass; otherwise the request must be signed
   * by a known account with a matching signature, and the account must hold every need.
   */
  authorize(request: AccessRequest): AccessDecision {
    if (this.isWhiteListed(request.remoteIp)) return { allowed: true, reason: 'white-listed' };
    const auth = request.auth;
    if (auth === undefined) return { allowed: false, reason: 'unsigned' };
    const account = this.accounts.get(auth.accessKey);
    if (account === undefined) return { allowed: false, reason: 'unknown-account' };
    if (!auth.verified) return { allowed: false, reason: 'bad-signature' };
    if (account.admin) return { allowed: true, reason: 'admin' };
    for (const need of request.needs) {
      if (!holds(account, need)) {
        return { allowed: false, reason: need.kind === 'admin' ? 'not-admin' : 'not-granted', need };
      }
    }
    return { allowed: true, reason: 'granted' };
  }
}

const ACCOUNT_FIELDS = [
  'accessKey',
  'secretKey',
  'admin',
  'defaultTopicPerm',
  'defaultGroupPerm',
  'topicPerms',
  'groupPerms',
];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(
  value: Record<string, unknown>,
  known: readonly string[],
  where: string,
  fail: (where: string, what: string) => never,
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key))
      fail(`${where} field ${key}`, `is not a known field (known: ${known.join(', ')})`);
  }
}

/** An exact address or a `*` pattern, anchored: `*` matches any run of characters. */
function addressPattern(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.]/g, '\\.'))
    .join('.*');
  return new RegExp(`^${body}$`, 'i');
}
