import type { OperationName, OperationRequest } from '../message/operations';
import type { AccessNeed } from './access-control';

const topic = (name: string, perm: 'PUB' | 'SUB'): AccessNeed => ({ kind: 'topic', name, perm });
const group = (name: string, perm: 'PUB' | 'SUB'): AccessNeed => ({ kind: 'group', name, perm });
const ANY_ACCOUNT: readonly AccessNeed[] = Object.freeze([{ kind: 'account' }]);

type AccessTable = { readonly [N in OperationName]: (request: OperationRequest<N>) => readonly AccessNeed[] };

/**
 * What each row of the operation table (`message/operations.ts`) needs from the ACL, by operation
 * name, so every front end that serves the table checks the same thing (the table of
 * docs/security.md). A retry topic (`%RETRY%group`) is checked as SUB on its group by the ACL itself.
 */
const OPERATION_ACCESS: AccessTable = Object.freeze({
  topicRoute: () => ANY_ACCOUNT,
  send: (r) => [topic(r.topic, 'PUB')],
  pull: (r) => [topic(r.topic, 'SUB'), group(r.consumerGroup, 'SUB')],
  queryOffset: (r) => [topic(r.topic, 'SUB'), group(r.group, 'SUB')],
  commitOffset: (r) => [topic(r.topic, 'SUB'), group(r.group, 'SUB')],
  minOffset: (r) => [topic(r.topic, 'SUB')],
  maxOffset: (r) => [topic(r.topic, 'SUB')],
  searchOffset: (r) => [topic(r.topic, 'SUB')],
  heartbeat: (r) => {
    const needs: AccessNeed[] = r.producerGroups.map((g) => group(g, 'PUB'));
    for (const consumer of r.consumers) {
      needs.push(group(consumer.group, 'SUB'));
      for (const s of consumer.subscriptions) needs.push(topic(s.topic, 'SUB'));
    }
    return needs;
  },
  unregisterClient: () => ANY_ACCOUNT,
  consumerIds: () => ANY_ACCOUNT,
  sendBack: (r) => [group(r.consumerGroup, 'SUB')],
  endTransaction: (r) => [group(r.producerGroup, 'PUB')],
  pop: (r) => [topic(r.topic, 'SUB'), group(r.consumerGroup, 'SUB')],
  ack: (r) => [topic(r.topic, 'SUB'), group(r.consumerGroup, 'SUB')],
  changeInvisibleTime: (r) => [topic(r.topic, 'SUB'), group(r.consumerGroup, 'SUB')],
  lockQueues: (r) => [group(r.group, 'SUB'), ...r.queues.map((q) => topic(q.topic, 'SUB'))],
  unlockQueues: (r) => [group(r.group, 'SUB'), ...r.queues.map((q) => topic(q.topic, 'SUB'))],
});

/** What operation `name` asked with `request` needs from the ACL. Admin operations need an admin account. */
export function operationAccessNeeds<N extends OperationName>(
  name: N,
  request: OperationRequest<N>,
): AccessNeed[] {
  const needsOf = OPERATION_ACCESS[name] as (request: OperationRequest<N>) => readonly AccessNeed[];
  return [...needsOf(request)];
}
