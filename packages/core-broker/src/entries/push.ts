// @rocketnest/core-broker/push: the WebSocket push server (topics to browsers, docs/push.md), its
// JWT helpers, and the push client for Node (createPushClient supplies the `ws` WebSocket).
export { PushServer, PUSH_CLIENT_FILE } from '../push/push-server';
export type { PushMetrics, PushServerEvents } from '../push/push-server';
export { DEFAULT_PUSH_PATH } from '../push/push-options';
export type {
  PushServerOptions,
  PushAuthorize,
  PushAuthenticate,
  PushDecision,
  PushRefusal,
  PushSubscriptionRequest,
} from '../push/push-options';
export {
  PUSH_PROTOCOL_VERSION,
  PUSH_SUBPROTOCOL,
  PUSH_ERROR_CODES,
  PushCloseCode,
  isReconnectCloseCode,
} from '../push/push-protocol';
export type { PushErrorCode, PushFilter, PushFrom } from '../push/push-protocol';
export { verifyJwt, jwtAuthorizer, bearerToken } from '../push/push-jwt';
export type { JwtAlgorithm, JwtClaims, JwtVerifyOptions, JwtAuthorizerOptions } from '../push/push-jwt';
export { createPushClient } from '../push/push-node-client';
export { PushClient, PushError } from '../push/client/push-client.cjs';
export type {
  PushClientOptions,
  PushMessage,
  PushSubscriptionHandle,
  SubscribeOptions,
} from '../push/client/push-client.cjs';
