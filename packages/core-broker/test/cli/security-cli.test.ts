import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { TcpTransport } from '../../src/client/tcp-transport';
import { isRocketError } from '../../src/common/errors';
import { generateTestCerts } from '../support/test-certs';
import { tempDir } from '../support/temp-dir';
import { spawn } from 'node:child_process';
import { runCli } from '../support/run-cli';

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const MAIN = path.join(__dirname, '../../src/cli/main.ts');

describe('rocketnest broker: --acl-file and TLS flags', () => {
  test('--help lists the security flags', async () => {
    const help = await runCli(['broker', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--acl-file <path>/);
    expect(help.stdout).toMatch(/--tls-cert <file>/);
    expect(help.stdout).toMatch(/--tls-key <file>/);
  });

  test('a bad ACL file exits 1 with the reason before anything listens; --tls-cert alone is a usage error', async () => {
    const t = tempDir();
    try {
      const acl = path.join(t.dir, 'acl.json');
      writeFileSync(
        acl,
        JSON.stringify({ accounts: [{ accessKey: 'app', secretKey: 'x', defaultTopicPerm: 'ALL' }] }),
      );
      const bad = await runCli([
        'broker',
        '--store-dir',
        path.join(t.dir, 'data'),
        '--port',
        '0',
        '--acl-file',
        acl,
      ]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain(
        `INVALID_OPTION: ACL file ${acl}: account #0 ("app") field defaultTopicPerm must be one of PUB, SUB, PUB|SUB, DENY (got "ALL")`,
      );
      expect(bad.stdout).not.toMatch(/listening/);
      const missing = await runCli([
        'broker',
        '--store-dir',
        path.join(t.dir, 'data'),
        '--port',
        '0',
        '--acl-file',
        path.join(t.dir, 'nope.json'),
      ]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/ACL file .*nope\.json does not exist/);
      const half = await runCli([
        'broker',
        '--store-dir',
        path.join(t.dir, 'data'),
        '--port',
        '0',
        '--tls-cert',
        acl,
      ]);
      expect(half.code).toBe(2);
      expect(half.stderr).toMatch(/--tls-cert and --tls-key go together/);
    } finally {
      t.cleanup();
    }
  });

  test('a broker process with --acl-file and TLS serves a signed TLS client and refuses an unsigned one', async () => {
    const t = tempDir();
    const { certs, cleanup } = generateTestCerts(['server']);
    const acl = path.join(t.dir, 'acl.json');
    writeFileSync(
      acl,
      JSON.stringify({
        accounts: [
          {
            accessKey: 'app',
            secretKey: 'app-secret',
            topicPerms: { orders: 'PUB|SUB' },
            groupPerms: { PG: 'PUB' },
          },
        ],
      }),
    );
    const { certFile, keyFile } = certs.server!;
    const child = spawn(
      process.execPath,
      [
        '-r',
        REGISTER,
        MAIN,
        'broker',
        '--store-dir',
        path.join(t.dir, 'data'),
        '--port',
        '0',
        '--topics',
        'orders:1',
        '--acl-file',
        acl,
        '--tls-cert',
        certFile,
        '--tls-key',
        keyFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const transports: TcpTransport[] = [];
    try {
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        const guard = setTimeout(() => reject(new Error(`broker did not start: ${out}`)), 20_000);
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const m = /listening on 127\.0\.0\.1:(\d+) \(TLS\)/.exec(out);
          if (m && /press Ctrl\+C/.test(out)) {
            clearTimeout(guard);
            resolve(Number(m[1]));
          }
        });
      });
      expect(out).toMatch(/ACL on: 1 accounts from /);
      expect(out).not.toMatch(/app-secret/);
      const brokers = { 'broker-a': `127.0.0.1:${port}` };
      const signed = new TcpTransport({
        brokers,
        tls: { caFile: certFile },
        credentials: { accessKey: 'app', secretKey: 'app-secret' },
      });
      const unsigned = new TcpTransport({ brokers, tls: { caFile: certFile } });
      transports.push(signed, unsigned);
      const request = {
        producerGroup: 'PG',
        topic: 'orders',
        queueId: 0,
        messages: [{ topic: 'orders', body: Buffer.from('over TLS') }],
        bornTimestampMs: 0,
      };
      expect((await signed.send('broker-a', request)).messages).toHaveLength(1);
      const refused = await unsigned.send('broker-a', request).catch((error: unknown) => error);
      expect(isRocketError(refused, 'ACCESS_DENIED')).toBe(true);
      expect(await signed.maxOffset('broker-a', { topic: 'orders', queueId: 0 })).toBe(1);
    } finally {
      for (const x of transports) await x.close();
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      cleanup();
      t.cleanup();
    }
  });
});
