import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { CliProcess } from '../cluster/process-harness';
import { generateTestCerts } from '../support/test-certs';
import { tempDir } from '../support/temp-dir';
import { runCli } from '../support/run-cli';

/** A name server and a broker, both on TLS; the broker with an ACL; clients and admin through the name server. */
describe('a secured cluster of processes', () => {
  const dirs = tempDir('rocketnest-secure-');
  const tls = generateTestCerts(['node']);
  const cert = tls.certs.node!;
  const processes: CliProcess[] = [];

  afterAll(async () => {
    for (const p of processes) p.kill('SIGTERM');
    await Promise.all(processes.map((p) => p.exited));
    tls.cleanup();
    dirs.cleanup();
  });

  test('TLS name server, TLS + ACL broker registered through it; signed clients and admin work, unsigned admin is refused', async () => {
    const acl = path.join(dirs.dir, 'acl.json');
    writeFileSync(
      acl,
      JSON.stringify({
        accounts: [
          { accessKey: 'app', secretKey: 'app-secret', defaultTopicPerm: 'PUB', defaultGroupPerm: 'PUB' },
          { accessKey: 'ops', secretKey: 'ops-secret', admin: true },
        ],
      }),
    );
    const tlsFlags = ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile];
    const namesrv = new CliProcess('namesrv', ['namesrv', '--port', '0', ...tlsFlags]);
    processes.push(namesrv);
    const nsAddress = await namesrv.address();
    expect(namesrv.output).toMatch(/\(TLS\)/);
    const broker = new CliProcess('broker', [
      'broker',
      '--store-dir',
      path.join(dirs.dir, 'data'),
      '--port',
      '0',
      '--topics',
      'Orders:2',
      '--namesrv',
      nsAddress,
      '--namesrv-tls-ca',
      cert.certFile,
      '--acl-file',
      acl,
      ...tlsFlags,
    ]);
    processes.push(broker);
    await broker.waitFor(/registered with 1 of 1 name servers/);

    const transport = new TcpTransport({
      nameServers: [nsAddress],
      tls: { caFile: cert.certFile },
      credentials: { accessKey: 'app', secretKey: 'app-secret' },
    });
    const producer = new Producer({ group: 'PG', transport });
    try {
      await producer.start();
      const sent = await producer.send({ topic: 'Orders', body: 'secure', keys: ['s-1'] });
      expect(sent.brokerName).toBe('broker-a');

      const common = ['--namesrv', nsAddress, '--tls-ca', cert.certFile];
      const listed = await runCli(
        ['admin', 'message', 'query', ...common, '--topic', 'Orders', '--key', 's-1', '--access-key', 'ops'],
        {
          ROCKETNEST_SECRET_KEY: 'ops-secret',
        },
      );
      expect(listed.stderr).toBe('');
      expect(listed.stdout).toContain(sent.msgId);
      const notAdmin = await runCli([
        'admin',
        'topic',
        'list',
        ...common,
        '--access-key',
        'app',
        '--secret-key',
        'app-secret',
      ]);
      expect(notAdmin.code).toBe(1);
      expect(notAdmin.stderr).toMatch(/ACCESS_DENIED/);
      const unsigned = await runCli(['admin', 'topic', 'list', ...common]);
      expect(unsigned.code).toBe(1);
      expect(unsigned.stderr).toMatch(/ACCESS_DENIED/);
      const noSecret = await runCli(['admin', 'topic', 'list', ...common, '--access-key', 'ops'], {
        ROCKETNEST_SECRET_KEY: '',
      });
      expect(noSecret.code).toBe(2);
      expect(noSecret.stderr).toMatch(
        /--access-key needs --secret-key or the ROCKETNEST_SECRET_KEY variable/,
      );
      const plain = await runCli(['admin', 'cluster', 'list', '--namesrv', nsAddress, '--timeout', '1000']);
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(/NAME_SERVER_UNAVAILABLE/);
    } finally {
      await producer.shutdown();
      await transport.close();
    }
  });
});
