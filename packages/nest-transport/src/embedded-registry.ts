import { RocketError } from '@rocketnest/core-broker';
import type { TopicInput } from '@rocketnest/core-broker/broker';
import * as path from 'node:path';
import {
  RocketConnection,
  type RocketConnectionOptions,
  type RocketEmbeddedOptions,
} from './rocket-connection';

/** An embedded broker a `RocketModule` runs in this process. */
interface ModuleBroker {
  connection: RocketConnection;
  options: RocketEmbeddedOptions;
}

/**
 * The embedded brokers of live `RocketModule`s in this process. A `RocketServer` or `RocketClient`
 * given `embedded` next to such a module uses the module's broker instead of starting a second one
 * that nothing else would send to (the mistake this guards against: the app's `RocketTemplate`
 * publishing into one broker and its listeners consuming another).
 */
const moduleBrokers = new Set<ModuleBroker>();

/** Records a module's embedded broker until the returned function is called. */
export function registerModuleBroker(
  connection: RocketConnection,
  options: RocketEmbeddedOptions,
): () => void {
  const entry: ModuleBroker = { connection, options };
  moduleBrokers.add(entry);
  return () => void moduleBrokers.delete(entry);
}

/**
 * Opens the connection of a `RocketServer` or `RocketClient` (`who`). With `embedded` while a
 * `RocketModule` of this process runs an embedded broker, it is that broker (its topics and the
 * reply topic created there; the module owns and closes it); if the two ask for different storage
 * it fails with `INVALID_OPTION` instead of starting a second broker.
 */
export async function openConnection(
  options: RocketConnectionOptions,
  replyTopic: string,
  who: string,
): Promise<RocketConnection> {
  if (options?.embedded === undefined || moduleBrokers.size === 0) {
    return RocketConnection.open(options, replyTopic);
  }
  const hint = "give it the module's connection instead: { transport: app.get(RocketConnection).transport }";
  if (moduleBrokers.size > 1) {
    throw new RocketError(
      'INVALID_OPTION',
      `${who} option embedded would start another broker, and ${moduleBrokers.size} RocketModules run embedded brokers in this process; ${hint}`,
    );
  }
  const [module] = [...moduleBrokers];
  const own = options.embedded;
  const dirOf = (o: RocketEmbeddedOptions): string => (o.dir === undefined ? 'memory' : path.resolve(o.dir));
  if (dirOf(own) !== dirOf(module!.options)) {
    throw new RocketError(
      'INVALID_OPTION',
      `${who} option embedded (store: ${dirOf(own)}) would start a second broker next to RocketModule's embedded broker (store: ${dirOf(module!.options)}): messages sent through one would never reach the other; drop the dir, or ${hint}`,
    );
  }
  if (own.broker !== undefined && JSON.stringify(own.broker) !== JSON.stringify(module!.options.broker)) {
    throw new RocketError(
      'INVALID_OPTION',
      `${who} option embedded.broker differs from RocketModule's embedded broker, which ${who} shares; set broker options on RocketModule only`,
    );
  }
  const broker = module!.connection.broker!;
  for (const topic of [replyTopic, ...(own.topics ?? [])]) {
    const input: TopicInput = typeof topic === 'string' ? { topic } : topic;
    if (!broker.getTopic(input.topic)) broker.createTopic(input);
  }
  // a view on the module's connection: closing it leaves the broker to the module
  return RocketConnection.open(
    { transport: module!.connection.transport, clock: options.clock ?? module!.connection.clock },
    replyTopic,
  );
}
