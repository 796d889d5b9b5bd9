import type { BrokerRegistration, TopicRoute, TopicRouteRequest } from '../message/protocol';
import { U8_BYTES, U16_BYTES, U32_BYTES } from './binary';
import { type Codec, headerCodec, jsonCodec } from './codec';

/** Fewest bytes one route entry takes: empty brokerName, two u32 counts, u8 permission, u8 fifo, empty address, no slaves. */
const MIN_ROUTE_BROKER_BYTES =
  U16_BYTES + U32_BYTES + U32_BYTES + U8_BYTES + U8_BYTES + U16_BYTES + U16_BYTES;
/** Fewest bytes one slave of a route entry takes: u16 broker id, empty address. */
const MIN_ROUTE_SLAVE_BYTES = U16_BYTES + U16_BYTES;

/**
 * Wire format of routing: `topicRoute` (GET_ROUTEINFO_BY_TOPIC, asked of a broker or a name
 * server) and what brokers tell name servers (REGISTER_BROKER, UNREGISTER_BROKER), in the terms
 * of `codec.ts`; every body is empty.
 *
 * | codec                | field       | size | notes                                                          |
 * |----------------------|-------------|------|----------------------------------------------------------------|
 * | topicRouteRequest    | topic       | str  |                                                                |
 * | topicRoute           | topic       | str  |                                                                |
 * |                      | brokers     | u16  | count, then count × (str brokerName, u32 readQueueCount, u32 writeQueueCount, u8 permission, u8 fifo, str address — empty when unknown or the master is down, u16 slaves, then slaves × (u16 brokerId, str address)) |
 * | brokerRegistration   | (header)    | JSON | every 30 s per broker, never on the message path               |
 * | brokerUnregistration | brokerName  | str  |                                                                |
 * |                      | brokerId    | u16  |                                                                |
 *
 * The cluster view a name server answers GET_BROKER_CLUSTER_INFO with is JSON too (`operation-codecs.ts`).
 */

export const topicRouteRequestCodec: Codec<TopicRouteRequest> = headerCodec(
  'topicRouteRequest',
  (w, v: TopicRouteRequest) => w.str(v.topic),
  (r) => ({ topic: r.str('topic') }),
);

export const topicRouteCodec: Codec<TopicRoute> = headerCodec<TopicRoute>(
  'topicRoute',
  (w, v) => {
    w.str(v.topic).u16(v.brokers.length);
    for (const b of v.brokers) {
      w.str(b.brokerName).u32(b.readQueueCount).u32(b.writeQueueCount).u8(b.permission).bool(b.fifo);
      w.str(b.address ?? '');
      const slaves = b.slaves ?? [];
      w.u16(slaves.length);
      for (const s of slaves) w.u16(s.brokerId).str(s.address);
    }
  },
  (r) => {
    const topic = r.str('topic');
    const count = r.count('brokers', 'u16', MIN_ROUTE_BROKER_BYTES);
    const brokers: TopicRoute['brokers'] = [];
    for (let i = 0; i < count; i++) {
      const entry: TopicRoute['brokers'][number] = {
        brokerName: r.str('brokerName'),
        readQueueCount: r.u32('readQueueCount'),
        writeQueueCount: r.u32('writeQueueCount'),
        permission: r.u8('permission'),
        fifo: r.bool('fifo'),
      };
      const address = r.str('address');
      if (address !== '') entry.address = address;
      const slaveCount = r.count('slaves', 'u16', MIN_ROUTE_SLAVE_BYTES);
      if (slaveCount > 0) {
        entry.slaves = [];
        for (let j = 0; j < slaveCount; j++) {
          entry.slaves.push({ brokerId: r.u16('brokerId'), address: r.str('address') });
        }
      }
      brokers.push(entry);
    }
    return { topic, brokers };
  },
);

/**
 * A broker's registration with a name server: JSON (every 30 s per broker, never on the message
 * path); the name server checks its shape with `parseBrokerRegistration`.
 */
export const brokerRegistrationCodec: Codec<BrokerRegistration> =
  jsonCodec<BrokerRegistration>('brokerRegistration');

export const brokerUnregistrationCodec: Codec<{ brokerName: string; brokerId: number }> = headerCodec(
  'brokerUnregistration',
  (w, v: { brokerName: string; brokerId: number }) => w.str(v.brokerName).u16(v.brokerId),
  (r) => ({ brokerName: r.str('brokerName'), brokerId: r.u16('brokerId') }),
);
