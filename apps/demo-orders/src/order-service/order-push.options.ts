import type { RocketPushModuleOptions } from '@rocketnest/nest-transport';
import { ORDER_NOTES_TOPIC, ORDERS_TOPIC, PAYMENTS_TOPIC } from '../contracts';

/** Where browsers connect; the push server serves its client module at `<path>/client.js`. */
export const ORDER_PUSH_PATH = '/push';
/** The topics a browser may follow. */
export const PUSHED_TOPICS: readonly string[] = [ORDERS_TOPIC, PAYMENTS_TOPIC, ORDER_NOTES_TOPIC];

/**
 * The order service's push channel (`RocketPushModule`, attached to the Nest HTTP server): browsers
 * may follow `orders`, `payments` and `order-notes`, nothing else. The demo has no users, so there is no
 * authentication; a real service would spread `jwtAuthorizer({ key })` (docs/push.md) here instead.
 */
export const ORDER_PUSH_OPTIONS: RocketPushModuleOptions = {
  path: ORDER_PUSH_PATH,
  authorize: (_request, { topic }) =>
    PUSHED_TOPICS.includes(topic) || { reason: `topic "${topic}" is not pushed to browsers` },
};
