import * as path from 'node:path';
import { AccessControl } from '../broker/access-control';
import { DEFAULT_BROKER_EXPIRY_MS } from '../namesrv/route-table';
import { DEFAULT_NAME_SERVER_PORT, NameServer } from '../server/name-server';
import { startNameServerHttp } from '../server/name-server-http';
import { UsageError, parseFlags, parsePort, runUntilSignal, serverTls } from './args';

export const NAMESRV_USAGE = `Usage: rocketnest namesrv [options]

Runs a name server until SIGTERM or SIGINT. Brokers register with every name server
(rocketnest broker --namesrv host:port,host:port) and refresh every 30 s; clients ask any of
them for topic routes (TcpTransport({ nameServers: [...] })). A broker leaves the routes when
it shuts down, when its connection drops, or after --broker-expiry of silence. A live broker's
name and id cannot be registered from another address. Without --acl-file any process that
reaches the name server can register brokers: listen only on a network that only brokers and
clients reach (docs/security.md).

Options:
  --host <address>         Address to listen on (default: 127.0.0.1)
  --port <n>               TCP port, 0 for any free one (default: ${DEFAULT_NAME_SERVER_PORT}, RocketMQ's)
  --broker-expiry <ms>     Silence after which a broker is dropped (default: ${DEFAULT_BROKER_EXPIRY_MS})
  --acl-file <path>        ACL JSON file (the brokers' format): registrations must then be signed by
                           an admin account (rocketnest broker --namesrv-access-key) or come from
                           a white-listed address; route queries stay open
  --tls-cert <file>        PEM certificate: serve TLS instead of plain TCP (needs --tls-key);
                           brokers then register with --namesrv-tls-ca
  --tls-key <file>         PEM private key of --tls-cert
  --http-port <n>          Serve HTTP on this port (0 = any free one): /metrics, /healthz, /readyz
                           (docs/operations.md); with --acl-file all but /healthz need HTTP Basic
                           accessKey:secretKey. Default: off
  --http-host <address>    Address the HTTP port listens on (default: 127.0.0.1)
  -h, --help               Show this help`;

export async function runNameServer(args: string[]): Promise<void> {
  const flags = parseFlags(args, [
    'host',
    'port',
    'broker-expiry',
    'acl-file',
    'tls-cert',
    'tls-key',
    'http-port',
    'http-host',
  ]);
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
  const httpPortFlag = flags.get('http-port');
  const httpPort = httpPortFlag === undefined ? undefined : parsePort(httpPortFlag, 0, '--http-port');
  const httpHost = flags.get('http-host') ?? '127.0.0.1';
  if (httpPort === undefined && flags.has('http-host')) throw new UsageError('--http-host needs --http-port');
  // a bad ACL file stops the name server here, before it listens
  const aclFile = flags.get('acl-file');
  const acl = aclFile === undefined ? undefined : AccessControl.load(path.resolve(aclFile));
  await runUntilSignal('namesrv', async () => {
    const server = await NameServer.start({
      host,
      port,
      tls,
      acl,
      brokerExpiryMs,
      onEvent: (e) => {
        if (e.type === 'broker.registered') {
          console.log(`  broker ${e.brokerName} registered from ${e.address} (${e.topicCount} topics)`);
        } else if (e.type === 'broker.refused') {
          console.log(`  broker ${e.brokerName} refused from ${e.address}: ${e.reason}`);
        } else if (e.type === 'broker.unregistered') {
          console.log(`  broker ${e.brokerName} unregistered`);
        } else {
          console.log(`  broker ${e.brokerName} dropped (${e.reason})`);
        }
      },
    });
    const listening = server.address();
    console.log(`rocketnest namesrv: listening on ${listening.host}:${listening.port}${tls ? ' (TLS)' : ''}`);
    if (acl) console.log(`  ACL on: ${acl.accessKeys.length} accounts from ${path.resolve(aclFile!)}`);
    const http =
      httpPort === undefined
        ? undefined
        : await startNameServerHttp({ host: httpHost, port: httpPort, acl, nameServer: server }).catch(
            async (error: unknown) => {
              await server.close();
              throw error;
            },
          );
    if (http) {
      const a = http.address();
      console.log(`  HTTP (/metrics, /healthz, /readyz) on ${a.host}:${a.port}`);
    }
    return async () => {
      await server.close();
      await http?.close();
    };
  });
}
