import type { RocketContext } from '@rocketnest/nest-transport';

/** The user property a retried message carries its first id in (RocketMQ `ORIGIN_MESSAGE_ID`). */
const ORIGIN_MSG_ID = '__ORIGIN_MSG_ID';

/**
 * The id of the message as it was first stored. A retried message is a copy with its own id; its
 * `__ORIGIN_MSG_ID` property names the original, which is what timelines and inboxes key on.
 */
export function originalMessageId(ctx: RocketContext): string {
  return ctx.getProperties()[ORIGIN_MSG_ID] ?? ctx.getMessageId();
}
