// What the two services say to each other: topics, tags, consumer groups and message bodies.
// Both services import only this file from each other's world.
import type { TopicInput } from '@rocketnest/core-broker/broker';

/** Order lifecycle events: `created`, and the state changes `paid`, `failed`, `cancelled`. */
export const ORDERS_TOPIC = 'orders';
/**
 * An order's `timeout`, sent delayed when the order is placed. Not on `orders`: a FIFO topic takes
 * no delayed messages (RocketMQ 5's topic message types, which the broker checks).
 */
export const ORDER_TIMEOUTS_TOPIC = 'order-timeouts';
/**
 * Payment outcomes, sent by the payment service as transactional messages: `succeeded`, `failed`.
 * A normal topic: a FIFO topic takes no transactional messages (RocketMQ 5's topic message types).
 */
export const PAYMENTS_TOPIC = 'payments';
/** Notes about an order from outside systems (a courier, a support desk), posted over HTTP: tag `note`. */
export const ORDER_NOTES_TOPIC = 'order-notes';
export const ORDER_NOTE_TAG = 'note';

export const OrderTag = {
  CREATED: 'created',
  TIMEOUT: 'timeout',
  PAID: 'paid',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
} as const;

export const PaymentTag = {
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
} as const;
export type PaymentTag = (typeof PaymentTag)[keyof typeof PaymentTag];

/** Consumer group of the order service (payments, its own `created` and `timeout`). */
export const ORDER_SERVICE_GROUP = 'order-service';
/** Consumer group of the payment service (`orders`/`created`). */
export const PAYMENT_SERVICE_GROUP = 'payment-service';
/** Producer group of the payment service's transactional messages; check-backs go to it. */
export const PAYMENT_TX_GROUP = 'payment-service-tx';

/**
 * The demo's topics. FIFO (`orders`, `order-notes`): a message group (the order id) always lands in
 * one queue, so the messages of one order are stored and consumed in order. The delayed timeouts
 * and the transactional payment outcomes go to normal topics, as RocketMQ 5 requires; the order
 * service applies them idempotently whatever their order.
 */
export const DEMO_TOPICS: readonly TopicInput[] = [
  { topic: ORDERS_TOPIC, queueCount: 4, fifo: true },
  { topic: ORDER_TIMEOUTS_TOPIC, queueCount: 4 },
  { topic: PAYMENTS_TOPIC, queueCount: 4 },
  { topic: ORDER_NOTES_TOPIC, queueCount: 4, fifo: true },
];

export const ORDER_STATUSES = ['created', 'paid', 'failed', 'cancelled'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** `orders`/`created`: message group and first key are the order id. */
export interface OrderCreatedEvent {
  orderId: string;
  amountCents: number;
  /** The card to charge (the demo's test cards decide the payment; see {@link TEST_CARDS}). */
  card: string;
  createdAtMs: number;
}

/** `orders`/`timeout`, delivered `orderTimeoutMs` after the order was created. */
export interface OrderTimeoutEvent {
  orderId: string;
}

/** `payments`/`succeeded` and `payments`/`failed`. */
export interface PaymentResultEvent {
  orderId: string;
  paymentId: string;
  status: PaymentTag;
  amountCents: number;
  /** Why a payment failed. */
  reason?: string;
}

/** `orders`/`paid`, `orders`/`failed`, `orders`/`cancelled`: the order service's state changes. */
export interface OrderStatusEvent {
  orderId: string;
  status: Exclude<OrderStatus, 'created'>;
  /** Id of the message that caused the change (a payment result or the timeout). */
  causeMsgId: string;
}

/** `order-notes`/`note`: posted by an outside system through the order service's Express endpoint. */
export interface OrderNoteEvent {
  orderId: string;
  /** 1 to 500 characters. */
  text: string;
}

/** Longest note text. */
export const MAX_NOTE_LENGTH = 500;

/**
 * Cards the simulated payment provider treats specially, whatever the failure rate. Any other
 * card of 12–19 digits is approved or declined at random (`paymentFailureRate`).
 */
export const TEST_CARDS = {
  /** Always approved. */
  APPROVED: '4242424242424242',
  /** Always declined ("card declined"). */
  DECLINED: '4000000000000002',
  /** The provider never answers: no payment is published, so the order times out. */
  NO_ANSWER: '4000000000000119',
} as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 128;
}

/** Checks the shape of an `orders`/`created` body (messages come from outside the type system). */
export function isOrderCreatedEvent(value: unknown): value is OrderCreatedEvent {
  return (
    isObject(value) &&
    isId(value.orderId) &&
    Number.isSafeInteger(value.amountCents) &&
    typeof value.card === 'string' &&
    typeof value.createdAtMs === 'number'
  );
}

/** Checks the shape of an `orders`/`timeout` body. */
export function isOrderTimeoutEvent(value: unknown): value is OrderTimeoutEvent {
  return isObject(value) && isId(value.orderId);
}

/** Checks the shape of a `payments` body. */
export function isPaymentResultEvent(value: unknown): value is PaymentResultEvent {
  return (
    isObject(value) &&
    isId(value.orderId) &&
    isId(value.paymentId) &&
    (value.status === PaymentTag.SUCCEEDED || value.status === PaymentTag.FAILED) &&
    Number.isSafeInteger(value.amountCents)
  );
}

/** Checks the shape of an `order-notes` body. */
export function isOrderNoteEvent(value: unknown): value is OrderNoteEvent {
  return (
    isObject(value) &&
    isId(value.orderId) &&
    typeof value.text === 'string' &&
    value.text.length > 0 &&
    value.text.length <= MAX_NOTE_LENGTH
  );
}
