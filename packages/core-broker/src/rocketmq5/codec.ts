import * as protobuf from 'protobufjs';
import { ROCKETMQ_V2_PROTO, WELL_KNOWN_PROTO } from './schema';

/**
 * Encoders and decoders of the `apache.rocketmq.v2` messages, built once from schema.ts by
 * protobufjs (which compiles each type's encoder and decoder to a function at first use: static
 * code without a generation step). Measured on this machine against @bufbuild/protobuf 2 (with
 * protoc-gen-es output) for a 1 KiB SendMessageRequest and ReceiveMessageResponse: protobufjs
 * encodes in ~3.2 µs and decodes in 0.7–2.0 µs, @bufbuild/protobuf takes ~10.5 µs and 2.9–4.8 µs.
 * `@grpc/proto-loader` is protobufjs plus a conversion to plain objects on every call, so it can
 * only be slower; its use of `.proto` files at run time also needs the files shipped beside dist.
 *
 * Decoded messages are protobufjs instances read as the plain interfaces below (camelCase
 * fields, unset scalars read as their proto3 default, int64 as a `Long` or number: use {@link toNumber}).
 * Encoders take plain objects of the same interfaces.
 */
const root = new protobuf.Root();
protobuf.parse(WELL_KNOWN_PROTO, root);
protobuf.parse(ROCKETMQ_V2_PROTO, root);
root.resolveAll();

export const PACKAGE = 'apache.rocketmq.v2';
export const SERVICE = `${PACKAGE}.MessagingService`;

/** A protobufjs message type: decode throws on malformed bytes; encode takes a plain object. */
export interface MessageCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

function codec<T>(name: string): MessageCodec<T> {
  const type = root.lookupType(`${PACKAGE}.${name}`);
  return {
    encode: (value) => type.encode(value as unknown as protobuf.Message).finish(),
    decode: (bytes) => type.decode(bytes) as unknown as T,
  };
}

/** int64 fields decode as `Long` objects (protobufjs with the `long` package) or numbers. */
export function toNumber(value: number | { toNumber(): number } | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

type Int64 = number | { toNumber(): number };

export interface Duration {
  seconds: Int64;
  nanos?: number;
}
export interface Timestamp {
  seconds: Int64;
  nanos?: number;
}
export const durationMs = (d: Duration | null | undefined): number =>
  d ? toNumber(d.seconds) * 1000 + Math.floor((d.nanos ?? 0) / 1e6) : 0;
export const msDuration = (ms: number): Duration => ({
  seconds: Math.floor(ms / 1000),
  nanos: (ms % 1000) * 1e6,
});
export const timestampMs = durationMs as (t: Timestamp | null | undefined) => number;
export const msTimestamp = msDuration as (ms: number) => Timestamp;

export const MessageType = { UNSPECIFIED: 0, NORMAL: 1, FIFO: 2, DELAY: 3, TRANSACTION: 4 } as const;
export const ClientType = {
  UNSPECIFIED: 0,
  PRODUCER: 1,
  PUSH_CONSUMER: 2,
  SIMPLE_CONSUMER: 3,
  PULL_CONSUMER: 4,
} as const;
export const FilterType = { UNSPECIFIED: 0, TAG: 1, SQL: 2 } as const;
export const PermissionV2 = { UNSPECIFIED: 0, NONE: 1, READ: 2, WRITE: 3, READ_WRITE: 4 } as const;
export const AddressScheme = { UNSPECIFIED: 0, IPv4: 1, IPv6: 2, DOMAIN_NAME: 3 } as const;
export const DigestType = { UNSPECIFIED: 0, CRC32: 1, MD5: 2, SHA1: 3 } as const;
export const Encoding = { UNSPECIFIED: 0, IDENTITY: 1, GZIP: 2 } as const;
export const TransactionResolution = { UNSPECIFIED: 0, COMMIT: 1, ROLLBACK: 2 } as const;
export const TransactionSource = { UNSPECIFIED: 0, CLIENT: 1, SERVER_CHECK: 2 } as const;

export interface Status {
  code: number;
  message: string;
}
export interface Resource {
  resourceNamespace?: string;
  name: string;
}
export interface FilterExpression {
  type: number;
  expression: string;
}
export interface Address {
  host: string;
  port: number;
}
export interface Endpoints {
  scheme: number;
  addresses: Address[];
}
export interface BrokerV2 {
  name: string;
  id: number;
  endpoints: Endpoints | null;
}
export interface MessageQueue {
  topic: Resource | null;
  id: number;
  permission: number;
  broker: BrokerV2 | null;
  acceptMessageTypes: number[];
}
export interface SystemProperties {
  tag?: string | null;
  keys?: string[];
  messageId: string;
  bodyDigest?: { type: number; checksum: string } | null;
  bodyEncoding?: number;
  messageType?: number;
  bornTimestamp?: Timestamp | null;
  bornHost?: string;
  storeTimestamp?: Timestamp | null;
  storeHost?: string;
  deliveryTimestamp?: Timestamp | null;
  receiptHandle?: string | null;
  queueId?: number;
  queueOffset?: Int64 | null;
  invisibleDuration?: Duration | null;
  deliveryAttempt?: number | null;
  messageGroup?: string | null;
  traceContext?: string | null;
  orphanedTransactionRecoveryDuration?: Duration | null;
  deadLetterQueue?: { topic: string; messageId: string } | null;
}
export interface MessageV2 {
  topic: Resource | null;
  userProperties: Record<string, string>;
  systemProperties: SystemProperties | null;
  body: Uint8Array;
}
export interface RetryPolicy {
  maxAttempts: number;
  exponentialBackoff?: { initial: Duration; max: Duration; multiplier: number } | null;
  customizedBackoff?: { next: Duration[] } | null;
}
export interface SubscriptionEntry {
  topic: Resource | null;
  expression: FilterExpression | null;
}
export interface Settings {
  clientType?: number | null;
  accessPoint?: Endpoints | null;
  backoffPolicy?: RetryPolicy | null;
  requestTimeout?: Duration | null;
  publishing?: { topics: Resource[]; maxBodySize: number; validateMessageType: boolean } | null;
  subscription?: {
    group?: Resource | null;
    subscriptions: SubscriptionEntry[];
    fifo?: boolean | null;
    receiveBatchSize?: number | null;
    longPollingTimeout?: Duration | null;
  } | null;
  userAgent?: { language: number; version: string; platform: string; hostname: string } | null;
  metric?: { on: boolean; endpoints?: Endpoints | null } | null;
}
export interface TelemetryCommand {
  status?: Status | null;
  settings?: Settings | null;
  threadStackTrace?: { nonce: string; threadStackTrace?: string | null } | null;
  verifyMessageResult?: { nonce: string } | null;
  recoverOrphanedTransactionCommand?: { message: MessageV2; transactionId: string } | null;
  printThreadStackTraceCommand?: { nonce: string } | null;
  verifyMessageCommand?: { nonce: string; message: MessageV2 } | null;
  reconnectEndpointsCommand?: { nonce: string } | null;
}

export interface QueryRouteRequest {
  topic: Resource | null;
  endpoints: Endpoints | null;
}
export interface QueryRouteResponse {
  status: Status;
  messageQueues: MessageQueue[];
}
export interface HeartbeatRequest {
  group?: Resource | null;
  clientType: number;
}
export interface StatusResponse {
  status: Status;
}
export interface SendMessageRequest {
  messages: MessageV2[];
}
export interface SendResultEntry {
  status: Status;
  messageId: string;
  transactionId: string;
  offset: number;
  recallHandle?: string;
}
export interface SendMessageResponse {
  status: Status;
  entries: SendResultEntry[];
}
export interface QueryAssignmentRequest {
  topic: Resource | null;
  group: Resource | null;
  endpoints: Endpoints | null;
}
export interface QueryAssignmentResponse {
  status: Status;
  assignments: Array<{ messageQueue: MessageQueue }>;
}
export interface ReceiveMessageRequest {
  group: Resource | null;
  messageQueue: MessageQueue | null;
  filterExpression: FilterExpression | null;
  batchSize: number;
  invisibleDuration?: Duration | null;
  autoRenew: boolean;
  longPollingTimeout?: Duration | null;
  attemptId?: string | null;
}
export interface ReceiveMessageResponse {
  status?: Status;
  message?: MessageV2;
  deliveryTimestamp?: Timestamp;
}
export interface AckMessageRequest {
  group: Resource | null;
  topic: Resource | null;
  entries: Array<{ messageId: string; receiptHandle: string }>;
}
export interface AckMessageResponse {
  status: Status;
  entries: Array<{ messageId: string; receiptHandle: string; status: Status }>;
}
export interface ForwardMessageToDeadLetterQueueRequest {
  group: Resource | null;
  topic: Resource | null;
  receiptHandle: string;
  messageId: string;
  deliveryAttempt: number;
  maxDeliveryAttempts: number;
}
export interface EndTransactionRequest {
  topic: Resource | null;
  messageId: string;
  transactionId: string;
  resolution: number;
  source: number;
  traceContext: string;
}
export interface NotifyClientTerminationRequest {
  group?: Resource | null;
}
export interface ChangeInvisibleDurationRequest {
  group: Resource | null;
  topic: Resource | null;
  receiptHandle: string;
  invisibleDuration: Duration | null;
  messageId: string;
}
export interface ChangeInvisibleDurationResponse {
  status: Status;
  receiptHandle: string;
}
export interface RecallMessageRequest {
  topic: Resource | null;
  recallHandle: string;
}
export interface RecallMessageResponse {
  status: Status;
  messageId: string;
}

/** How a method streams: `unary`, `server` (server streaming) or `bidi`. */
export type MethodKind = 'unary' | 'server' | 'bidi';

export interface MethodSpec<Req = unknown, Res = unknown> {
  name: string;
  /** The HTTP/2 path, `/apache.rocketmq.v2.MessagingService/<name>`. */
  path: string;
  kind: MethodKind;
  request: MessageCodec<Req>;
  response: MessageCodec<Res>;
}

function method<Req, Res>(name: string, kind: MethodKind, req: string, res: string): MethodSpec<Req, Res> {
  return { name, path: `/${SERVICE}/${name}`, kind, request: codec<Req>(req), response: codec<Res>(res) };
}

/** Every method of MessagingService that RocketNest knows, by name. */
export const METHODS = {
  QueryRoute: method<QueryRouteRequest, QueryRouteResponse>(
    'QueryRoute',
    'unary',
    'QueryRouteRequest',
    'QueryRouteResponse',
  ),
  Heartbeat: method<HeartbeatRequest, StatusResponse>(
    'Heartbeat',
    'unary',
    'HeartbeatRequest',
    'HeartbeatResponse',
  ),
  SendMessage: method<SendMessageRequest, SendMessageResponse>(
    'SendMessage',
    'unary',
    'SendMessageRequest',
    'SendMessageResponse',
  ),
  QueryAssignment: method<QueryAssignmentRequest, QueryAssignmentResponse>(
    'QueryAssignment',
    'unary',
    'QueryAssignmentRequest',
    'QueryAssignmentResponse',
  ),
  ReceiveMessage: method<ReceiveMessageRequest, ReceiveMessageResponse>(
    'ReceiveMessage',
    'server',
    'ReceiveMessageRequest',
    'ReceiveMessageResponse',
  ),
  AckMessage: method<AckMessageRequest, AckMessageResponse>(
    'AckMessage',
    'unary',
    'AckMessageRequest',
    'AckMessageResponse',
  ),
  ForwardMessageToDeadLetterQueue: method<ForwardMessageToDeadLetterQueueRequest, StatusResponse>(
    'ForwardMessageToDeadLetterQueue',
    'unary',
    'ForwardMessageToDeadLetterQueueRequest',
    'ForwardMessageToDeadLetterQueueResponse',
  ),
  EndTransaction: method<EndTransactionRequest, StatusResponse>(
    'EndTransaction',
    'unary',
    'EndTransactionRequest',
    'EndTransactionResponse',
  ),
  Telemetry: method<TelemetryCommand, TelemetryCommand>(
    'Telemetry',
    'bidi',
    'TelemetryCommand',
    'TelemetryCommand',
  ),
  NotifyClientTermination: method<NotifyClientTerminationRequest, StatusResponse>(
    'NotifyClientTermination',
    'unary',
    'NotifyClientTerminationRequest',
    'NotifyClientTerminationResponse',
  ),
  ChangeInvisibleDuration: method<ChangeInvisibleDurationRequest, ChangeInvisibleDurationResponse>(
    'ChangeInvisibleDuration',
    'unary',
    'ChangeInvisibleDurationRequest',
    'ChangeInvisibleDurationResponse',
  ),
  RecallMessage: method<RecallMessageRequest, RecallMessageResponse>(
    'RecallMessage',
    'unary',
    'RecallMessageRequest',
    'RecallMessageResponse',
  ),
} as const;

export type MethodName = keyof typeof METHODS;
