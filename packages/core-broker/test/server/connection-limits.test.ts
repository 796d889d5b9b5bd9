// Issue 15 #5: unauthenticated connections can neither pin a server's memory nor lock clients out.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import * as path from 'node:path';
import { RocketError } from '../../src/common/errors';
import { encodeFrame, encodeSignedFrameParts } from '../../src/remoting/frame-codec';
import { RemotingServer } from '../../src/remoting/remoting-server';
import { ManualClock } from '../support/manual-clock';
import { tempDir } from '../support/temp-dir';

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const MAIN = path.join(__dirname, '../../src/cli/main.ts');
const MiB = 1024 * 1024;

/** Polls `condition` on real time (sockets and child processes), failing after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

function open(port: number, localAddress?: string): Promise<Socket & { gone: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) }) as Socket & {
      gone: Promise<void>;
    };
    s.gone = new Promise((r) => s.once('close', () => r()));
    s.on('error', () => undefined);
    sockets.push(s);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** The fixed part of an unsigned request frame announcing `frameLength` bytes (no body yet). */
function frameStart(frameLength: number): Buffer {
  const fixed = encodeFrame({
    code: 10,
    opaque: 1,
    flags: 0,
    header: Buffer.alloc(0),
    body: Buffer.alloc(0),
  });
  fixed.writeUInt32LE(frameLength, 0);
  return fixed;
}

/** Resident memory of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return Number(kb) * 1024;
}

describe('broker and name server processes under partial 16 MiB frames', () => {
  const dirs = tempDir('rocketnest-limits-');
  afterAll(() => dirs.cleanup());

  async function startProcess(args: string[]): Promise<{ pid: number; port: number; stop(): Promise<void> }> {
    const child = spawn(process.execPath, ['-r', REGISTER, MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await until(() => /listening on [\d.]+:\d+/.test(output) || child.exitCode !== null, 'listening', 30_000);
    const port = Number(/listening on [\d.]+:(\d+)/.exec(output)![1]);
    return {
      pid: child.pid!,
      port,
      stop: async () => {
        child.kill('SIGTERM');
        await exited;
      },
    };
  }

  test('40 connections sending partial 16 MiB frames grow neither process past its frame budget', async () => {
    const broker = await startProcess(['broker', '--store-dir', path.join(dirs.dir, 'data'), '--port', '0']);
    const namesrv = await startProcess(['namesrv', '--port', '0']);
    try {
      const body = Buffer.alloc(6 * MiB, 7); // one buffer, written on every socket
      for (const target of [broker, namesrv]) {
        const before = rssOf(target.pid);
        const attackers = [];
        for (let i = 0; i < 40; i++) {
          const s = await open(target.port);
          s.write(frameStart(16 * MiB));
          s.write(body);
          attackers.push(s);
        }
        // let the server read whatever it will read
        await new Promise((r) => setTimeout(r, 3_000));
        const grown = rssOf(target.pid) - before;
        // the name server refuses frames over 4 MiB at their fixed part and closes; the broker reads
        // only as many frames as its 64 MiB budget reserves (4 of 16 MiB: 4 × 6 MiB sent) and one
        // chunk of each waiting connection
        const bound = target === namesrv ? 32 * MiB : 60 * MiB;
        expect(grown).toBeLessThan(bound);
        if (target === namesrv) await Promise.all(attackers.map((s) => s.gone));
        for (const s of attackers) s.destroy();
      }
    } finally {
      await broker.stop();
      await namesrv.stop();
    }
  }, 90_000);
});

describe('RemotingServer limits', () => {
  const servers: RemotingServer[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const s of servers.splice(0)) await s.close();
  });
  async function listen(
    options: Partial<Parameters<typeof RemotingServer.listen>[0]> = {},
  ): Promise<RemotingServer> {
    const server = await RemotingServer.listen({
      host: '127.0.0.1',
      closeTimeoutMs: 100,
      handler: async () => ({ header: Buffer.alloc(0), body: Buffer.from('ok') }),
      ...options,
    });
    servers.push(server);
    return server;
  }

  test('past maxBufferedFrameBytes a connection starting a frame waits, and reads once the budget frees', async () => {
    const server = await listen({ maxFrameBytes: MiB, maxBufferedFrameBytes: MiB });
    const { port } = server.address();
    const a = await open(port);
    const b = await open(port);
    const full = encodeFrame({
      code: 10,
      opaque: 1,
      flags: 0,
      header: Buffer.alloc(0),
      body: Buffer.alloc(MiB - 17, 1),
    });
    a.write(full.subarray(0, MiB / 2));
    await until(() => server.bufferedFrameBytes === MiB, 'a reserved its frame');
    const bReplies: Buffer[] = [];
    b.on('data', (c: Buffer) => bReplies.push(c));
    b.write(frameStart(MiB));
    await until(() => server.connectionStats().some((c) => c.paused), 'b waits for budget');
    expect(server.bufferedFrameBytes).toBe(MiB);
    b.write(full.subarray(17));
    a.write(full.subarray(MiB / 2));
    await until(() => bReplies.length > 0, 'b answered after a completed');
    await until(() => server.bufferedFrameBytes === 0, 'budget given back');
  });

  test('a frame not completed within frameTimeoutMs closes its connection and gives its budget back', async () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const server = await listen({ clock, frameTimeoutMs: 30_000, onError: (e) => errors.push(e) });
    const s = await open(server.address().port);
    s.write(frameStart(MiB));
    s.write(Buffer.alloc(1000));
    await until(() => server.bufferedFrameBytes === MiB, 'frame started');
    clock.advance(29_999);
    expect(server.connections).toHaveLength(1);
    clock.advance(1);
    await s.gone;
    await until(() => server.bufferedFrameBytes === 0, 'its budget given back');
    expect(errors).toContainEqual(
      expect.objectContaining({
        code: 'PROTOCOL_ERROR',
        message: expect.stringMatching(/not completed within 30000 ms/),
      }),
    );
  });

  test('before authenticating, frames over unauthenticatedMaxFrameBytes close the connection; a known signed key may send more', async () => {
    const server = await listen({
      secretKeyOf: (key) => (key === 'app' ? 'secret' : undefined),
      unauthenticatedMaxFrameBytes: 64 * 1024,
    });
    const { port } = server.address();
    const unsigned = await open(port);
    unsigned.write(frameStart(65 * 1024));
    await unsigned.gone;
    const unknownKey = await open(port);
    const parts = encodeSignedFrameParts(
      { code: 10, opaque: 1, flags: 0, header: Buffer.alloc(0), body: Buffer.alloc(100 * 1024) },
      Buffer.from('stranger'),
      Buffer.alloc(32),
    );
    unknownKey.write(Buffer.concat(parts));
    await unknownKey.gone;
    const known = await open(port);
    const replies: Buffer[] = [];
    known.on('data', (c: Buffer) => replies.push(c));
    known.write(
      Buffer.concat(
        encodeSignedFrameParts(
          { code: 10, opaque: 1, flags: 0, header: Buffer.alloc(0), body: Buffer.alloc(100 * 1024) },
          Buffer.from('app'),
          Buffer.alloc(32),
        ),
      ),
    );
    await until(() => replies.length > 0, "answered (its signature is the handler's business)");
    expect(known.destroyed).toBe(false);
    // a trusted (white-listed) address is not limited
    const trusting = await listen({
      secretKeyOf: () => undefined,
      isTrustedAddress: (ip) => ip.endsWith('127.0.0.1'),
    });
    const local = await open(trusting.address().port);
    const answered: Buffer[] = [];
    local.on('data', (c: Buffer) => answered.push(c));
    local.write(
      encodeFrame({ code: 10, opaque: 1, flags: 0, header: Buffer.alloc(0), body: Buffer.alloc(200 * 1024) }),
    );
    await until(() => answered.length > 0, 'trusted address answered');
  });

  test('maxConnectionsPerAddress: one address cannot take every connection; another address still connects', async () => {
    const server = await listen({ maxConnectionsPerAddress: 3, maxConnections: 10 });
    const { port } = server.address();
    for (let i = 0; i < 3; i++) await open(port);
    const fourth = await open(port);
    await fourth.gone;
    const other = await open(port, '127.0.0.2');
    await until(() => server.connections.length === 4, 'the other address is served');
    expect(other.destroyed).toBe(false);
    // a closed connection frees its address's slot
    sockets[0]!.destroy();
    await until(() => server.connections.length === 3, 'slot freed');
    const again = await open(port);
    await until(() => server.connections.length === 4, 'reconnected');
    expect(again.destroyed).toBe(false);
  });

  test('options are checked', async () => {
    await expect(listen({ maxConnectionsPerAddress: 0 })).rejects.toThrow(RocketError);
    await expect(listen({ maxFrameBytes: 1000, unauthenticatedMaxFrameBytes: 2000 })).rejects.toThrow(
      /unauthenticatedMaxFrameBytes/,
    );
    await expect(listen({ frameTimeoutMs: -1 })).rejects.toThrow(/frameTimeoutMs/);
  });
});
