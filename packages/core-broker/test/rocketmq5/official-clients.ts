import { execFile, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Test support for RocketMQ 5 compatibility: a real Apache RocketMQ started from its Maven Central
 * jars by `tools/apache-rocketmq.sh`, and the official Java client driven by
 * `tools/rocketmq-java-client` (Probe.java), whose events come back as JSON lines.
 */
const REPO = path.join(__dirname, '../../../..');
const APACHE_SCRIPT = path.join(REPO, 'tools/apache-rocketmq.sh');
const PROBE_DIR = path.join(REPO, 'tools/rocketmq-java-client');
/** Maven's first fetch on a fresh machine (about 150 MB) plus the JVMs' start on 2 cores. */
export const APACHE_START_TIMEOUT_MS = 300_000;

export interface ApacheRocketMq {
  workDir: string;
  namesrv: string;
  proxy: string;
}

function run(
  command: string,
  args: string[],
  timeoutMs: number,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const options = { timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, ...env } };
    execFile(command, args, options, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts Apache RocketMQ in `workDir` with the topics (`topic[:queues[:fifo]]`); throws with its log
 * on failure. With `auth`, ACL 2.0 is on and that account is its super user (the script's
 * APACHE_ROCKETMQ_AUTH, passed explicitly: Jest's `process.env` is the test's copy, not what child
 * processes inherit).
 */
export async function startApacheRocketMq(
  workDir: string,
  topics: string[],
  options: { auth?: { accessKey: string; secretKey: string } } = {},
): Promise<ApacheRocketMq> {
  const env: Record<string, string> = options.auth
    ? { APACHE_ROCKETMQ_AUTH: `${options.auth.accessKey}:${options.auth.secretKey}` }
    : {};
  const { code, stdout, stderr } = await run(
    'bash',
    [APACHE_SCRIPT, 'start', workDir, ...topics],
    APACHE_START_TIMEOUT_MS,
    env,
  );
  const last = stdout.trim().split('\n').pop() ?? '';
  const match = /^namesrv=(\S+) proxy=(\S+)$/.exec(last);
  if (code !== 0 || !match) {
    await stopApacheRocketMq(workDir);
    throw new Error(`apache-rocketmq.sh start failed (exit ${code}):\n${stdout}\n${stderr}`);
  }
  return { workDir, namesrv: match[1]!, proxy: match[2]! };
}

export async function stopApacheRocketMq(workDir: string): Promise<void> {
  await run('bash', [APACHE_SCRIPT, 'stop', workDir], 60_000);
}

/** Runs Apache's mqadmin against the cluster in `workDir`; resolves with its output. */
export async function apacheAdmin(workDir: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await run('bash', [APACHE_SCRIPT, 'admin', workDir, ...args], 60_000);
  return stdout + stderr;
}

/**
 * Compiles Probe.java and fetches the official Java client (once per machine; Maven caches it), and
 * again whenever Probe.java is newer than its class.
 */
export async function buildJavaProbe(): Promise<void> {
  const classFile = path.join(PROBE_DIR, 'target/classes/dev/rocketnest/probe/Probe.class');
  const source = path.join(PROBE_DIR, 'src/main/java/dev/rocketnest/probe/Probe.java');
  if (existsSync(classFile) && statSync(classFile).mtimeMs >= statSync(source).mtimeMs) return;
  const { code, stdout, stderr } = await run(
    'mvn',
    ['-q', '-B', '-f', path.join(PROBE_DIR, 'pom.xml'), 'package'],
    APACHE_START_TIMEOUT_MS,
  );
  if (code !== 0) throw new Error(`building the Java probe failed:\n${stdout}\n${stderr}`);
}

/**
 * The official client's request timeout in the probes. Its default, 3 s, also bounds the first
 * Settings exchange at start-up, which a 2-core machine running the Apache JVMs and a RocketNest
 * broker side by side can miss.
 */
const PROBE_REQUEST_TIMEOUT_MS = 10_000;

export interface ProbeEvent {
  event: string;
  [key: string]: string | number | null;
}

export interface ProbeRun {
  code: number | null;
  events: ProbeEvent[];
  stderr: string;
}

/**
 * Runs one Probe scenario (`send`, `transaction`, `simple`, `push`) with `--name value` options and
 * collects its JSON events. Bounded by `timeoutMs` (SIGKILL after it).
 */
export function runJavaProbe(
  scenario: string,
  options: Record<string, string | number>,
  logDir: string,
  timeoutMs = 120_000,
): Promise<ProbeRun> {
  const args = [
    `-Drocketmq.log.root=${logDir}`,
    '-Xmx256m',
    '-cp',
    `${path.join(PROBE_DIR, 'target/classes')}:${path.join(PROBE_DIR, 'target/lib/*')}`,
    'dev.rocketnest.probe.Probe',
    scenario,
    ...Object.entries({ 'request-timeout-ms': PROBE_REQUEST_TIMEOUT_MS, ...options }).flatMap(
      ([key, value]) => [`--${key}`, String(value)],
    ),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      const events = stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as ProbeEvent);
      resolve({ code, events, stderr });
    });
  });
}

/** The events named `name`, in order. */
export function eventsNamed(run: ProbeRun, name: string): ProbeEvent[] {
  return run.events.filter((e) => e.event === name);
}
