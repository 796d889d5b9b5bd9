#!/usr/bin/env node
import { isRocketError } from '../common/errors';
import { ADMIN_USAGE, adminUsageOf, runAdmin } from './admin-command';
import { UsageError } from './args';
import { BROKER_USAGE, runBroker } from './broker-command';
import { NAMESRV_USAGE, runNameServer } from './namesrv-command';

const USAGE = `Usage: rocketnest <command> [options]

Commands:
  namesrv    Run a name server (brokers register with it, clients ask it for routes)
  broker     Run a broker on a durable data directory, standalone or registered with name servers
  admin      Administer a cluster or a broker: topics, group progress, messages, offsets, DLQ

Run "rocketnest <command> --help" for a command's options.`;

/** Each command: how it runs, and the usage printed with its errors. */
const COMMANDS: Record<string, { run: (args: string[]) => Promise<void>; usage: string }> = {
  namesrv: { run: runNameServer, usage: NAMESRV_USAGE },
  broker: { run: runBroker, usage: BROKER_USAGE },
  admin: { run: runAdmin, usage: ADMIN_USAGE },
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const known = command === undefined ? undefined : COMMANDS[command];
  try {
    if (known) {
      await known.run(rest);
      return 0;
    }
    if (command === undefined || command === '-h' || command === '--help') {
      console.log(USAGE);
      return command === undefined ? 1 : 0;
    }
    throw new UsageError(`unknown command "${command}"`);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`rocketnest: ${error.message}\n\n${adminUsageOf(error) ?? known?.usage ?? USAGE}`);
      return 2;
    }
    if (isRocketError(error)) {
      console.error(`rocketnest: ${error.code}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
