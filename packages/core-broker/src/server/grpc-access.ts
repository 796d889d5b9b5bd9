import type { AccessControl, AccessNeed } from '../broker/access-control';
import type { MethodName, Settings } from '../rocketmq5/codec';
import {
  AUTHORIZATION_HEADER,
  DATE_TIME_HEADER,
  parseAuthorization,
  verifySignature,
} from '../rocketmq5/signature';
import { Code, StatusFailure } from '../rocketmq5/status';

type Named = { name?: string } | null | undefined;
const topic = (r: Named, perm: 'PUB' | 'SUB'): AccessNeed => ({ kind: 'topic', name: r?.name ?? '', perm });
const group = (r: Named, perm: 'PUB' | 'SUB'): AccessNeed => ({ kind: 'group', name: r?.name ?? '', perm });

/**
 * What a gRPC call needs from the ACL (the TCP port's table in docs/security.md, mapped):
 *
 * | method                                                        | needs                             |
 * |---------------------------------------------------------------|-----------------------------------|
 * | SendMessage                                                   | PUB on the topic                  |
 * | EndTransaction                                                | PUB on the topic (a gRPC producer's group is its topic) |
 * | ReceiveMessage, AckMessage, ChangeInvisibleDuration, ForwardMessageToDeadLetterQueue | SUB on the topic and the group |
 * | Telemetry Settings                                            | producers PUB on each topic; consumers SUB on the group and each topic |
 * | RecallMessage                                                 | PUB on the topic                  |
 * | QueryRoute                                                    | PUB or SUB on the topic (as Apache 5.3's ACL 2.0) |
 * | QueryAssignment, Heartbeat, NotifyClientTermination           | any account                       |
 */
export function grpcAccessAlternatives(method: MethodName, request: unknown): AccessNeed[][] {
  if (method === 'QueryRoute') {
    const t = (request as { topic?: Named }).topic;
    return [[topic(t, 'PUB')], [topic(t, 'SUB')]];
  }
  return [grpcAccessNeeds(method, request)];
}

/** The needs of a call with one set of them (every method but QueryRoute; see the table above). */
export function grpcAccessNeeds(method: MethodName, request: unknown): AccessNeed[] {
  const r = request as Record<string, Named> & {
    messages?: Array<{ topic: Named }>;
    messageQueue?: { topic: Named };
  };
  switch (method) {
    case 'SendMessage':
      return (r.messages ?? []).map((m) => topic(m.topic, 'PUB'));
    case 'EndTransaction':
    case 'RecallMessage':
      return [topic(r.topic, 'PUB')];
    case 'ReceiveMessage':
      return [topic(r.messageQueue?.topic, 'SUB'), group(r.group, 'SUB')];
    case 'AckMessage':
    case 'ChangeInvisibleDuration':
    case 'ForwardMessageToDeadLetterQueue':
      return [topic(r.topic, 'SUB'), group(r.group, 'SUB')];
    default:
      return [{ kind: 'account' }];
  }
}

export function settingsAccessNeeds(settings: Settings): AccessNeed[] {
  if (settings.publishing) return settings.publishing.topics.map((t) => topic(t, 'PUB'));
  if (settings.subscription) {
    return [
      group(settings.subscription.group, 'SUB'),
      ...settings.subscription.subscriptions.map((s) => topic(s.topic, 'SUB')),
    ];
  }
  return [{ kind: 'account' }];
}

/** The signing account of a call, from its headers (undefined when unsigned). */
export function callAuth(
  acl: AccessControl,
  header: (name: string) => string | undefined,
): { accessKey: string; verified: boolean } | undefined {
  const authorization = header(AUTHORIZATION_HEADER);
  if (authorization === undefined) return undefined;
  const parsed = parseAuthorization(authorization);
  if (!parsed) return { accessKey: '', verified: false };
  const secret = acl.secretKeyOf(parsed.accessKey);
  const dateTime = header(DATE_TIME_HEADER) ?? '';
  return {
    accessKey: parsed.accessKey,
    verified: secret !== undefined && verifySignature(secret, dateTime, parsed.signatureHex),
  };
}

/**
 * Refuses a call the ACL does not allow (none of `alternatives` is granted whole): UNAUTHORIZED
 * (40100) when it is unsigned, signed by an unknown account or with a bad signature, and also when
 * the account lacks a permission — Apache 5.3's ACL 2.0 answers both with 40100, never FORBIDDEN.
 */
export function checkAccess(
  acl: AccessControl,
  remoteIp: string,
  auth: { accessKey: string; verified: boolean } | undefined,
  alternatives: AccessNeed[][],
): void {
  let decision = acl.authorize({ remoteIp, auth, needs: alternatives[0] ?? [] });
  for (let i = 1; !decision.allowed && i < alternatives.length; i++) {
    const next = acl.authorize({ remoteIp, auth, needs: alternatives[i]! });
    if (next.allowed) decision = next;
  }
  if (decision.allowed) return;
  if (decision.reason === 'not-granted' || decision.reason === 'not-admin') {
    throw new StatusFailure(
      Code.UNAUTHORIZED,
      'access denied: the account has no permission for this call (grant it in the ACL file)',
    );
  }
  throw new StatusFailure(
    Code.UNAUTHORIZED,
    `access denied: the call is ${decision.reason === 'unsigned' ? 'not signed' : 'not signed by a known account'}`,
  );
}
