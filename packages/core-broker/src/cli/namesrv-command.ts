import { DEFAULT_BROKER_EXPIRY_MS } from '../namesrv/route-table';
import { DEFAULT_NAME_SERVER_PORT, NameServer } from '../server/name-server';
import { UsageError, parseFlags, parsePort, runUntilSignal, serverTls } from './args';

export const NAMESRV_USAGE = `Usage: rocketnest namesrv [options]

Runs a name server until SIGTERM or SIGINT. Brokers register with every name server
(rocketnest broker --namesrv host:port,host:port) and refresh every 30 s; clients ask any of
them for topic routes (TcpTransport({ nameServers: [...] })). A broker leaves the routes when
it shuts down, when its connection drops, or after --broker-expiry of silence.

Options:
  --host <address>         Address to listen on (default: 127.0.0.1)
  --port <n>               TCP port, 0 for any free one (default: ${DEFAULT_NAME_SERVER_PORT}, RocketMQ's)
  --broker-expiry <ms>     Silence after which a broker is dropped (default: ${DEFAULT_BROKER_EXPIRY_MS})
  --tls-cert <file>        PEM certificate: serve TLS instead of plain TCP (needs --tls-key);
                           brokers then register with --namesrv-tls-ca
  --tls-key <file>         PEM private key of --tls-cert
  -h, --help               Show this help`;

export async function runNameServer(args: string[]): Promise<void> {
  const flags = parseFlags(args, ['host', 'port', 'broker-expiry', 'tls-cert', 'tls-key']);
  if (flags.has('help')) {
    console.log(NAMESRV_USAGE);
    return;
  }
  const host = flags.get('host') ?? '127.0.0.1';
  const port = parsePort(flags.get('port'), DEFAULT_NAME_SERVER_PORT);
  const expiry = flags.get('broker-expiry');
  const brokerExpiryMs = expiry === undefined ? undefined : Number(expiry);
  if (brokerExpiryMs !== undefined && (!Number.isSafeInteger(brokerExpiryMs) || brokerExpiryMs < 1)) {
    throw new UsageError(`--broker-expiry must be a positive number of ms, not "${expiry}"`);
  }
  const tls = serverTls(flags);
  await runUntilSignal('namesrv', async () => {
    const server = await NameServer.start({
      host,
      port,
      tls,
      brokerExpiryMs,
      onEvent: (e) => {
        if (e.type === 'broker.registered') {
          console.log(`  broker ${e.brokerName} registered from ${e.address} (${e.topicCount} topics)`);
        } else if (e.type === 'broker.unregistered') {
          console.log(`  broker ${e.brokerName} unregistered`);
        } else {
          console.log(`  broker ${e.brokerName} dropped (${e.reason})`);
        }
      },
    });
    const listening = server.address();
    console.log(`rocketnest namesrv: listening on ${listening.host}:${listening.port}${tls ? ' (TLS)' : ''}`);
    return () => server.close();
  });
}
