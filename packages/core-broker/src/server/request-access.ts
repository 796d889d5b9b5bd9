import type { AccessNeed } from '../broker/access-control';
import { operationAccessNeeds } from '../broker/operation-access';
import { OPERATION_NAMES, type OperationName } from '../message/operations';
import { WIRE_OPERATIONS } from '../remoting/operation-codecs';
import { RequestCode, requestCodeName } from '../remoting/request-codes';

/** The operation-table row each TCP request code serves. */
const OPERATION_BY_CODE: ReadonlyMap<number, OperationName> = new Map(
  OPERATION_NAMES.map((name) => [WIRE_OPERATIONS[name].code, name]),
);

/**
 * What a TCP request needs from the ACL: an operation-table row's needs by its name
 * (`broker/operation-access.ts`, shared by every front end); the broker's own cluster query any
 * account; admin codes (1000+) and any code a client has no business sending to a broker an admin
 * account.
 */
export function accessNeedsOf(code: number, request: unknown): AccessNeed[] {
  const name = OPERATION_BY_CODE.get(code);
  if (name !== undefined) return operationAccessNeeds(name, request as never);
  if (code === RequestCode.GET_BROKER_CLUSTER_INFO) return [{ kind: 'account' }];
  return [{ kind: 'admin' }];
}

/**
 * The one message every refusal gets: it names the request and what it needs, never which check
 * failed (unsigned, unknown key, wrong secret, or missing permission), nor any secret.
 */
export function accessDeniedMessage(code: number, needs: readonly AccessNeed[]): string {
  const described = needs.map((need) => {
    switch (need.kind) {
      case 'admin':
        return 'an admin account';
      case 'account':
        return 'a valid account';
      default:
        return `${need.perm} on ${need.kind} "${need.name}"`;
    }
  });
  const unique = [...new Set(described)];
  return (
    `${requestCodeName(code)} (needs ${unique.length === 0 ? 'a valid account' : unique.join(', ')}): access denied. ` +
    'Sign requests with the credentials option of an account the broker ACL grants this, or ask the broker operator.'
  );
}
