/**
 * Receipt handles as RocketNest's gRPC front end hands them to RocketMQ 5 clients. Clients treat
 * handles as opaque strings and copy them into Ack, ChangeInvisibleDuration and
 * ForwardMessageToDeadLetterQueue (rocketmq-grpc reference §5.2). RocketNest's handle is the
 * broker's own pop handle (base64url, see broker/receipt-handle.ts) followed by a `.` and the id
 * under which the broker stored the message, because clients identify messages by the id their
 * producer made (`UNIQ_KEY`) while the broker's send-back to the dead-letter topic needs the stored
 * copy's id:
 *
 *   <broker pop handle>.<stored message id>
 *
 * The front end checks that the id names the message the pop handle points at, so a forged id
 * cannot move another message.
 */
export const HANDLE_SEPARATOR = '.';

export interface GrpcReceiptHandle {
  /** The broker's pop handle. */
  brokerHandle: string;
  /** The stored copy's id (broker message id). */
  storedId: string;
}

export function encodeGrpcReceiptHandle(h: GrpcReceiptHandle): string {
  return `${h.brokerHandle}${HANDLE_SEPARATOR}${h.storedId}`;
}

/** Splits a handle; undefined for a string that is not one (the caller answers INVALID_RECEIPT_HANDLE). */
export function decodeGrpcReceiptHandle(text: string): GrpcReceiptHandle | undefined {
  const at = text.lastIndexOf(HANDLE_SEPARATOR);
  if (at <= 0 || at === text.length - 1) return undefined;
  return { brokerHandle: text.slice(0, at), storedId: text.slice(at + 1) };
}
