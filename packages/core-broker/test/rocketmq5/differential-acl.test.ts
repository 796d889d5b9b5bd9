import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CliProcess } from '../cluster/process-harness';
import {
  apacheAdmin,
  APACHE_START_TIMEOUT_MS,
  type ApacheRocketMq,
  buildJavaProbe,
  startApacheRocketMq,
  stopApacheRocketMq,
} from './official-clients';
import { aclSendAndReceive, type Credentials, type Target } from './scenarios';

/**
 * The differential suite's ACL part: the official Java client with good, wrong and missing
 * credentials, and with an account lacking a permission, against Apache RocketMQ 5.3 with ACL 2.0
 * on (tools/apache-rocketmq.sh with APACHE_ROCKETMQ_AUTH) and against `rocketnest broker
 * --grpc-port --acl-file`, the same account on both. Outcomes (messages, exception class,
 * response code) must be equal. Its own file because Apache's ACL is fixed at start.
 */
const SUPER = { accessKey: 'rocketmq', secretKey: 'super-secret-1' };
const APP = { accessKey: 'app', secretKey: 'app-secret-1' };
const TOPICS = ['AclTopic:4', 'AclOther:4'];
let apache: ApacheRocketMq;
let rocketnest: CliProcess;
const targets: Record<'apache' | 'rocketnest', Target> = {} as never;
const workDir = mkdtempSync(path.join(tmpdir(), 'rocketmq5-diff-acl-'));
const unused = async () => {
  throw new Error('not used by the ACL scenarios');
};

/**
 * Runs an Apache admin command until it reports success, or until `check` (another admin command)
 * shows its effect: mqadmin's calls time out after ~3 s on a loaded machine while the broker still
 * carries them out, and a create run again then fails.
 */
async function admin(args: string[], check: { args: string[]; shows: RegExp }): Promise<void> {
  const outs: string[] = [];
  for (let attempt = 1; attempt <= 5; attempt++) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, attempt * 1000));
    const out = await apacheAdmin(apache.workDir, args);
    outs.push(out);
    if (/success/.test(out)) return;
    if (check.shows.test(await apacheAdmin(apache.workDir, check.args))) return;
  }
  throw new Error(`mqadmin ${args[0]} failed:\n${outs.join('\n---\n')}`);
}

beforeAll(async () => {
  await buildJavaProbe();
  const aclFile = path.join(workDir, 'acl.json');
  writeFileSync(
    aclFile,
    JSON.stringify({
      accounts: [
        {
          accessKey: APP.accessKey,
          secretKey: APP.secretKey,
          topicPerms: { AclTopic: 'PUB|SUB' },
          groupPerms: { AclGroup: 'SUB' },
        },
      ],
    }),
  );
  rocketnest = new CliProcess('rocketnest broker', [
    'broker',
    '--store-dir',
    path.join(workDir, 'rocketnest'),
    '--port',
    '0',
    '--grpc-port',
    '0',
    '--acl-file',
    aclFile,
    '--topics',
    TOPICS.join(','),
  ]);
  const [, port] = (await rocketnest.waitFor(
    /gRPC \(RocketMQ 5 MessagingService\) on [\d.]+:(\d+)/,
    60_000,
  ))!;
  targets.rocketnest = {
    name: 'rocketnest',
    endpoint: `127.0.0.1:${port}`,
    logDir: path.join(workDir, 'client-logs-rocketnest'),
    createFifoGroup: unused,
    limitRetries: unused,
  };
  apache = await startApacheRocketMq(path.join(workDir, 'apache'), TOPICS, { auth: SUPER });
  // The same account as RocketNest's ACL file: a normal user allowed Pub and Sub on AclTopic and
  // AclGroup, nothing on AclOther.
  await admin(['createUser', '-c', 'DefaultCluster', '-u', APP.accessKey, '-p', APP.secretKey], {
    args: ['getUser', '-c', 'DefaultCluster', '-u', APP.accessKey],
    shows: /Normal/i,
  });
  await admin(
    [
      'createAcl',
      '-c',
      'DefaultCluster',
      '-s',
      `User:${APP.accessKey}`,
      '-r',
      'Topic:AclTopic,Group:AclGroup',
      '-a',
      'Pub,Sub',
      '-d',
      'Allow',
    ],
    {
      args: ['getAcl', '-c', 'DefaultCluster', '-s', `User:${APP.accessKey}`],
      shows: /AclTopic/,
    },
  );
  targets.apache = {
    name: 'apache',
    endpoint: apache.proxy,
    logDir: path.join(workDir, 'client-logs-apache'),
    createFifoGroup: unused,
    limitRetries: unused,
  };
}, APACHE_START_TIMEOUT_MS + 180_000);

afterAll(async () => {
  rocketnest?.kill('SIGTERM');
  await rocketnest?.exited;
  await stopApacheRocketMq(path.join(workDir, 'apache'));
  // KEEP_DIFF_DIR=1 keeps the logs of both sides (Apache's broker.log, auth_audit.log) for a look
  if (!process.env.KEEP_DIFF_DIR) rmSync(workDir, { recursive: true, force: true });
}, 90_000);

/** Runs `scenario` against both targets at once; expects equal outcomes and returns Apache's. */
async function differential<T>(scenario: (t: Target) => Promise<T>): Promise<T> {
  const [onApache, onRocketNest] = await Promise.all([
    scenario(targets.apache),
    scenario(targets.rocketnest),
  ]);
  expect(onRocketNest).toEqual(onApache);
  return onApache;
}

const creds = (accessKey: string, secretKey: string): Credentials => ({
  'access-key': accessKey,
  'secret-key': secretKey,
});

test('good credentials: sent and received', async () => {
  const outcome = await differential((t) =>
    aclSendAndReceive(t, 'AclTopic', 'AclGroup', creds(APP.accessKey, APP.secretKey)),
  );
  expect(outcome).toEqual({ sent: 2, received: [0, 1], complete: 1, error: undefined, exit: 0 });
}, 240_000);

test('a wrong secret, an unknown account and no credentials: refused with UNAUTHORIZED at start', async () => {
  for (const credentials of [creds(APP.accessKey, 'wrong-secret'), creds('nobody', 'nobody-secret'), {}]) {
    const outcome = await differential((t) => aclSendAndReceive(t, 'AclTopic', 'AclGroup', credentials));
    expect(outcome).toEqual({
      sent: 0,
      error: { at: 'start', class: 'UnauthorizedException', code: 40100 },
      exit: 2,
    });
  }
}, 360_000);

test('an account without permission on the topic: refused at start with UNAUTHORIZED too', async () => {
  // Apache 5.3's ACL 2.0 refuses the route query, and answers 40100 rather than FORBIDDEN
  const outcome = await differential((t) =>
    aclSendAndReceive(t, 'AclOther', 'AclGroup', creds(APP.accessKey, APP.secretKey)),
  );
  expect(outcome).toEqual({
    sent: 0,
    error: { at: 'start', class: 'UnauthorizedException', code: 40100 },
    exit: 2,
  });
}, 240_000);
