import WebSocket from 'ws';
import { PushClient } from './client/push-client.cjs';
import type { PushClientOptions, WebSocketConstructor } from './client/push-client.cjs';

/**
 * A {@link PushClient} for Node: the browser module's class, with the `ws` package as its
 * WebSocket (Node 20 has no global one). Options as for `new PushClient(url, options)`.
 */
export function createPushClient(url: string, options: PushClientOptions = {}): PushClient {
  return new PushClient(url, { WebSocket: WebSocket as unknown as WebSocketConstructor, ...options });
}
