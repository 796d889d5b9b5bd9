// Typings of push-client.cjs, the CommonJS build of push-client.mjs, for Node's `require` and
// CommonJS test runners. The .cjs is generated at build time (scripts/build-push-client.js); here
// its typings are the module's own.
export {
  isReconnectCloseCode,
  PUSH_SUBPROTOCOL,
  DEFAULT_RECONNECT_MIN_MS,
  DEFAULT_RECONNECT_MAX_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  PushError,
  PushClient,
} from './push-client.mjs';
export type {
  WebSocketLike,
  WebSocketConstructor,
  PushClientOptions,
  PushFrom,
  SubscribeOptions,
  PushMessage,
  PushSubscriptionHandle,
  SubscriptionState,
} from './push-client.mjs';
