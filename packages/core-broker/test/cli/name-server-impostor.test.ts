// Issue 15 #3: nobody can take over a live broker's routes at the name server. A second broker
// process registering the same name and id from another address is refused while the first is
// live; with --acl-file, a name server takes registrations only signed with a broker credential.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { RemotingClient } from '../../src/remoting/remoting-client';
import { CODECS_BY_CODE as OPERATIONS } from '../../src/remoting/operation-codecs';
import { RequestCode } from '../../src/remoting/request-codes';
import { CliProcess } from '../cluster/process-harness';
import { runCli } from '../support/run-cli';
import { tempDir } from '../support/temp-dir';

// Each test starts four or five CLI processes: 90 s leaves room for a loaded machine.
describe('name server registrations from broker processes', () => {
  const dirs = tempDir('rocketnest-impostor-');
  const processes: CliProcess[] = [];

  afterEach(async () => {
    for (const p of processes) p.kill('SIGTERM');
    await Promise.all(processes.splice(0).map((p) => p.exited));
  });
  afterAll(() => dirs.cleanup());

  function start(name: string, args: string[]): CliProcess {
    const p = new CliProcess(name, args);
    processes.push(p);
    return p;
  }
  function broker(dir: string, nameServer: string, ...extra: string[]): CliProcess {
    return start(dir, [
      'broker',
      '--store-dir',
      path.join(dirs.dir, dir),
      '--port',
      '0',
      '--topics',
      'Orders:2',
      '--namesrv',
      nameServer,
      ...extra,
    ]);
  }
  async function routeAddress(nameServer: string): Promise<string> {
    const route = await runCli([
      'admin',
      'topic',
      'route',
      '--namesrv',
      nameServer,
      '--topic',
      'Orders',
      '--json',
    ]);
    expect(route.code).toBe(0);
    const brokers = (JSON.parse(route.stdout) as { brokers: Array<{ brokerName: string; address: string }> })
      .brokers;
    expect(brokers.map((b) => b.brokerName)).toEqual(['broker-a']);
    return brokers[0]!.address;
  }

  test('a second process under a live broker name is refused; routes and sends stay with the real broker', async () => {
    const namesrv = start('namesrv', ['namesrv', '--port', '0']);
    const ns = await namesrv.address();
    const real = broker('real', ns);
    const realAddress = await real.address();
    await real.waitFor(/registered with 1 of 1 name servers/);

    const impostor = broker('impostor', ns);
    const impostorAddress = await impostor.address();
    expect(impostorAddress).not.toBe(realAddress);
    await impostor.waitFor(/registered with 0 of 1 name servers/);
    expect(impostor.output).toMatch(/BROKER_NAME_CONFLICT|is live at/);
    await namesrv.waitFor(/broker broker-a refused from/);
    expect(await routeAddress(ns)).toBe(realAddress);

    // nor can a stranger unregister the live broker
    const stranger = new RemotingClient({});
    try {
      await expect(
        stranger.request(
          ns,
          RequestCode.UNREGISTER_BROKER,
          OPERATIONS[RequestCode.UNREGISTER_BROKER].request.encode({ brokerName: 'broker-a', brokerId: 0 }),
        ),
      ).rejects.toMatchObject({ code: 'BROKER_NAME_CONFLICT' });
    } finally {
      await stranger.close();
    }
    expect(await routeAddress(ns)).toBe(realAddress);

    const transport = new TcpTransport({ nameServers: [ns] });
    const producer = new Producer({ group: 'PG', transport });
    try {
      await producer.start();
      const sent = await producer.send({ topic: 'Orders', body: 'for the real broker' });
      const onReal = await runCli(['admin', 'message', 'get', '--broker', realAddress, '--id', sent.msgId]);
      expect(onReal.code).toBe(0);
      expect(onReal.stdout).toContain('for the real broker');
    } finally {
      await producer.shutdown();
      await transport.close();
    }

    // once the real broker is gone (its connection closes), the name is free again
    real.kill('SIGKILL');
    await real.exited;
    await namesrv.waitFor(/broker broker-a dropped \(connection-closed\)/);
  }, 90_000);

  test('with --acl-file only registrations signed by a broker credential are taken', async () => {
    const acl = path.join(dirs.dir, 'ns-acl.json');
    writeFileSync(
      acl,
      JSON.stringify({
        accounts: [
          { accessKey: 'broker-cred', secretKey: 'broker-secret', admin: true },
          { accessKey: 'app', secretKey: 'app-secret', defaultTopicPerm: 'PUB', defaultGroupPerm: 'PUB' },
        ],
      }),
    );
    const namesrv = start('namesrv', ['namesrv', '--port', '0', '--acl-file', acl]);
    const ns = await namesrv.address();
    await namesrv.waitFor(/ACL on: 2 accounts/);

    const unsigned = broker('unsigned', ns);
    await unsigned.waitFor(/registered with 0 of 1 name servers/);
    expect(unsigned.output).toMatch(/needs a broker credential/);
    const notAdmin = broker(
      'not-admin',
      ns,
      '--namesrv-access-key',
      'app',
      '--namesrv-secret-key',
      'app-secret',
    );
    await notAdmin.waitFor(/registered with 0 of 1 name servers/);
    const wrongSecret = broker(
      'wrong',
      ns,
      '--namesrv-access-key',
      'broker-cred',
      '--namesrv-secret-key',
      'nope',
    );
    await wrongSecret.waitFor(/registered with 0 of 1 name servers/);
    const noRoute = await runCli(['admin', 'topic', 'route', '--namesrv', ns, '--topic', 'Orders']);
    expect(noRoute.code).not.toBe(0);
    expect(noRoute.stderr).toMatch(/TOPIC_NOT_FOUND/);

    const signed = start('signed', [
      'broker',
      '--store-dir',
      path.join(dirs.dir, 'signed'),
      '--port',
      '0',
      '--topics',
      'Orders:2',
      '--namesrv',
      ns,
      '--namesrv-access-key',
      'broker-cred',
    ]);
    // the secret from the environment is not passed by CliProcess: a usage error says what is missing
    expect(await signed.exited).toBe(2);
    expect(signed.output).toMatch(/--namesrv-access-key needs --namesrv-secret-key/);
    const good = broker(
      'good',
      ns,
      '--namesrv-access-key',
      'broker-cred',
      '--namesrv-secret-key',
      'broker-secret',
    );
    const goodAddress = await good.address();
    await good.waitFor(/registered with 1 of 1 name servers/);
    expect(await routeAddress(ns)).toBe(goodAddress);
  }, 90_000);
});
