import type { AccessNeed } from '../broker/access-control';
import type {
  AckRequest,
  EndTransactionRequest,
  HeartbeatRequest,
  PopRequest,
  PullRequest,
  QueueLockRequest,
  SendBackRequest,
  SendRequest,
} from '../message/protocol';
import { RequestCode, requestCodeName } from '../remoting/request-codes';

const topic = (name: string, perm: 'PUB' | 'SUB'): AccessNeed => ({ kind: 'topic', name, perm });
const group = (name: string, perm: 'PUB' | 'SUB'): AccessNeed => ({ kind: 'group', name, perm });

/**
 * What a request needs from the ACL, from its decoded payload (the table of docs/security.md):
 *
 * | request                                               | needs                                  |
 * |-------------------------------------------------------|----------------------------------------|
 * | SEND_MESSAGE                                          | PUB on the topic                       |
 * | END_TRANSACTION                                       | PUB on the producer group              |
 * | PULL_MESSAGE, POP_MESSAGE, ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLE_TIME, QUERY/UPDATE_CONSUMER_OFFSET | SUB on the topic and on the consumer group |
 * | SEARCH_OFFSET_BY_TIMESTAMP, GET_MIN/MAX_OFFSET        | SUB on the topic                       |
 * | HEART_BEAT                                            | SUB on each consumer group and each topic it subscribes to, PUB on each producer group |
 * | CONSUMER_SEND_MSG_BACK                                | SUB on the consumer group              |
 * | LOCK_BATCH_MQ, UNLOCK_BATCH_MQ                        | SUB on the consumer group and each queue's topic |
 * | GET_ROUTEINFO_BY_TOPIC, GET_BROKER_CLUSTER_INFO, GET_CONSUMER_LIST_BY_GROUP, UNREGISTER_CLIENT | any account |
 * | admin codes (1000+) and any other code                | an admin account                       |
 *
 * A retry topic (`%RETRY%group`) in any of these is checked as SUB on its group (`holds`).
 */
export function accessNeedsOf(code: number, request: unknown): AccessNeed[] {
  const C = RequestCode;
  switch (code) {
    case C.SEND_MESSAGE:
      return [topic((request as SendRequest).topic, 'PUB')];
    case C.END_TRANSACTION:
      return [group((request as EndTransactionRequest).producerGroup, 'PUB')];
    case C.PULL_MESSAGE:
    case C.POP_MESSAGE:
    case C.ACK_MESSAGE:
    case C.CHANGE_MESSAGE_INVISIBLE_TIME: {
      const r = request as PullRequest | PopRequest | AckRequest;
      return [topic(r.topic, 'SUB'), group(r.consumerGroup, 'SUB')];
    }
    case C.QUERY_CONSUMER_OFFSET:
    case C.UPDATE_CONSUMER_OFFSET: {
      const r = request as { group: string; topic: string };
      return [topic(r.topic, 'SUB'), group(r.group, 'SUB')];
    }
    case C.LOCK_BATCH_MQ:
    case C.UNLOCK_BATCH_MQ: {
      const r = request as QueueLockRequest;
      return [group(r.group, 'SUB'), ...r.queues.map((q) => topic(q.topic, 'SUB'))];
    }
    case C.SEARCH_OFFSET_BY_TIMESTAMP:
    case C.GET_MAX_OFFSET:
    case C.GET_MIN_OFFSET:
      return [topic((request as { topic: string }).topic, 'SUB')];
    case C.HEART_BEAT: {
      const r = request as HeartbeatRequest;
      const needs: AccessNeed[] = r.producerGroups.map((g) => group(g, 'PUB'));
      for (const consumer of r.consumers) {
        needs.push(group(consumer.group, 'SUB'));
        for (const s of consumer.subscriptions) needs.push(topic(s.topic, 'SUB'));
      }
      return needs;
    }
    case C.CONSUMER_SEND_MSG_BACK:
      return [group((request as SendBackRequest).consumerGroup, 'SUB')];
    case C.GET_ROUTEINFO_BY_TOPIC:
    case C.GET_BROKER_CLUSTER_INFO:
    case C.GET_CONSUMER_LIST_BY_GROUP:
    case C.UNREGISTER_CLIENT:
      return [{ kind: 'account' }];
    default:
      // admin requests (1000+), and codes a client has no business sending to a broker
      return [{ kind: 'admin' }];
  }
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
