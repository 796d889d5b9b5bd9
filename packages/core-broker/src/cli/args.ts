import type { ServerTlsOptions } from '../remoting/tls-options';

/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

/**
 * Parses `--name value`, `--name=value`, switches (`--json`, stored as `true`) and `-h`/`--help`
 * (stored as `help`). Unknown options and options without a value are `UsageError`s.
 */
export function parseFlags(args: string[], known: string[], switches: string[] = []): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-h' || arg === '--help') {
      flags.set('help', 'true');
      continue;
    }
    const [name, inline] = arg.startsWith('--') ? arg.slice(2).split(/=(.*)/s, 2) : [undefined, undefined];
    if (name && inline === undefined && switches.includes(name)) {
      flags.set(name, 'true');
      continue;
    }
    if (!name || !known.includes(name)) throw new UsageError(`unknown option "${arg}"`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`option --${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

/** `--port`'s value as a TCP port (0 = any free one). */
export function parsePort(value: string | undefined, fallback: number, flag = '--port'): number {
  const port = Number(value ?? fallback);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`${flag} must be 0..65535, not "${value}"`);
  return port;
}

/**
 * Runs a server process: `start` opens everything and returns its `close`; the process then waits
 * for SIGTERM or SIGINT and closes. Signals are handled from the start, so a stop during startup
 * still closes cleanly; a second signal while closing is acknowledged, not fatal.
 */
export async function runUntilSignal(name: string, start: () => Promise<() => Promise<void>>): Promise<void> {
  let stopRequested: (signal: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (stopRequested = resolve));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.log(`rocketnest ${name}: ${signal} received, already closing`);
      return;
    }
    stopping = true;
    stopRequested(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const keepAlive = setInterval(() => undefined, 1 << 30);
  try {
    const close = await start();
    console.log('  press Ctrl+C (or send SIGTERM) to stop');
    const signal = await stopped;
    console.log(`rocketnest ${name}: ${signal} received, closing`);
    await close();
    console.log(`rocketnest ${name}: closed cleanly`);
  } finally {
    clearInterval(keepAlive);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/** A list of `host:port` addresses separated by `,` or `;` (RocketMQ writes `namesrvAddr` with `;`). */
export function parseAddressList(flag: string, value: string): string[] {
  const list = value
    .split(/[,;]/)
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (list.length === 0) throw new UsageError(`${flag} needs at least one host:port`);
  for (const address of list) {
    if (!/^[^\s:]+:\d{1,5}$/.test(address)) throw new UsageError(`${flag}: "${address}" is not host:port`);
  }
  return list;
}

/** `--tls-cert` and `--tls-key` (together or not at all) as a server's TLS options. */
export function serverTls(flags: Map<string, string>): ServerTlsOptions | undefined {
  const certFile = flags.get('tls-cert');
  const keyFile = flags.get('tls-key');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  return certFile === undefined || keyFile === undefined ? undefined : { certFile, keyFile };
}
