import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';

const REGISTER = path.join(__dirname, 'swc-register.js');
const MAIN = path.join(__dirname, '../../src/cli/main.ts');

/** A `rocketnest broker` (or `namesrv`) process started from the sources, with the ports it printed. */
export interface ServerProcess {
  child: ChildProcessWithoutNullStreams;
  /** The TCP port clients connect to. */
  port: number;
  /** The `--http-port` it listens on. */
  httpPort: number;
  out(): string;
  /** SIGTERM, then the exit code (a 20 s guard kills it). */
  stop(): Promise<number | null>;
}

/** Starts `rocketnest <args>` and waits (up to 30 s) for it to print its ports and "press Ctrl+C". */
export async function startServerProcess(args: string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['-r', REGISTER, MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const ports = await new Promise<{ port: number; httpPort: number }>((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    child.on('close', () => {
      clearTimeout(guard);
      reject(new Error(`server exited: ${out}`));
    });
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const tcp = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      const web = /HTTP \(\/metrics, \/healthz, \/readyz[^)]*\) on 127\.0\.0\.1:(\d+)/.exec(out);
      if (tcp && web && /press Ctrl\+C/.test(out)) {
        clearTimeout(guard);
        resolve({ port: Number(tcp[1]), httpPort: Number(web[1]) });
      }
    });
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw error;
  });
  return {
    child,
    ...ports,
    out: () => out,
    async stop() {
      const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.kill('SIGTERM');
      const code = await exited;
      clearTimeout(guard);
      return code;
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request to 127.0.0.1:`port` on a fresh connection (no agent keeps sockets open). */
export function httpRequest(
  port: number,
  pathname: string,
  options: { method?: string; auth?: string; body?: unknown } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: pathname,
        method: options.method ?? 'GET',
        agent: false,
        headers: {
          ...(options.auth ? { authorization: `Basic ${Buffer.from(options.auth).toString('base64')}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${pathname} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The value of one sample of a Prometheus text exposition, or `undefined` when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter(Boolean)
      .sort()
      .join(',');
    if (got === wanted) return Number(m[3]);
  }
  return undefined;
}

/** Polls `check` every 200 ms until it returns a value other than `undefined`, up to `deadlineMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  deadlineMs = 30_000,
): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
