import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { AccessControl } from '../broker/access-control';
import { RocketError, isRocketError } from '../common/errors';

/** Largest request body the HTTP front end reads (a dashboard action is a few hundred bytes). */
export const MAX_HTTP_REQUEST_BYTES = 64 * 1024;
/** Most HTTP connections at once: the endpoint is for scrapers, probes and an operator's browser. */
export const MAX_HTTP_CONNECTIONS = 256;
/** A request that sends nothing for this long is closed. */
const HTTP_REQUEST_TIMEOUT_MS = 30_000;

/** What a route gets: the parsed URL, and the body parsed as JSON for a POST. */
export interface HttpRequestContext {
  url: URL;
  /** The JSON body of a POST (`undefined` for GET). */
  body: unknown;
}

export interface HttpReply {
  status: number;
  contentType: string;
  body: string | Buffer;
  headers?: Record<string, string>;
}

/**
 * One route of the HTTP front end. `access` says who may call it when ACL is on: `open` needs no
 * credentials (the liveness probe), `account` any account of the ACL file, `admin` an admin
 * account (lookups of any message and resending dead letters).
 */
export interface HttpRoute {
  method: 'GET' | 'POST';
  path: string;
  access: 'open' | 'account' | 'admin';
  handle(request: HttpRequestContext): HttpReply | Promise<HttpReply>;
}

export interface HttpServerOptions {
  /** Address to listen on; loopback unless an operator says otherwise. */
  host: string;
  /** Port; 0 picks a free one (see `address()`). */
  port: number;
  routes: readonly HttpRoute[];
  /**
   * With an ACL, every route but the `open` ones needs HTTP Basic credentials
   * `accessKey:secretKey` of one of its accounts (white-listed addresses pass, as on TCP).
   */
  acl?: AccessControl | undefined;
}

export const json = (status: number, value: unknown): HttpReply => ({
  status,
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify(value),
});

export const text = (status: number, body: string): HttpReply => ({
  status,
  contentType: 'text/plain; charset=utf-8',
  body,
});

/** The HTTP status a route's `RocketError` answers with. */
function statusOf(error: RocketError): number {
  switch (error.code) {
    case 'INVALID_ARGUMENT':
      return 400;
    case 'MESSAGE_NOT_FOUND':
    case 'TOPIC_NOT_FOUND':
      return 404;
    case 'PERMISSION_DENIED':
    case 'ACCESS_DENIED':
      return 403;
    default:
      return error.retriable ? 503 : 500;
  }
}

/**
 * The HTTP front end's transport: routes by method and path, HTTP Basic against the ACL, bounded
 * bodies and connections, errors as JSON `{ code, message }`. It knows nothing of brokers: the
 * routes (`broker-http.ts`, `name-server-http.ts`) map onto the broker's own methods and stats.
 */
export class HttpServer {
  private constructor(
    private readonly server: http.Server,
    private readonly options: HttpServerOptions,
  ) {}

  static async start(options: HttpServerOptions): Promise<HttpServer> {
    const routes = new Map<string, HttpRoute[]>();
    for (const route of options.routes) {
      const list = routes.get(route.path) ?? [];
      list.push(route);
      routes.set(route.path, list);
    }
    const server = http.createServer();
    const self = new HttpServer(server, options);
    server.on(
      'request',
      (req: http.IncomingMessage, res: http.ServerResponse) => void self.serve(routes, req, res),
    );
    server.maxConnections = MAX_HTTP_CONNECTIONS;
    server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
    server.headersTimeout = HTTP_REQUEST_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      throw new RocketError(
        'INVALID_OPTION',
        `cannot listen for HTTP on ${options.host}:${options.port} (${error.code ?? error.message}); choose another --http-port or --http-host`,
        { cause: error },
      );
    });
    return self;
  }

  address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Stops listening and closes every connection (keep-alive ones included). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async serve(
    routes: Map<string, HttpRoute[]>,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    let reply: HttpReply;
    try {
      reply = await this.route(routes, req);
    } catch (error) {
      reply = isRocketError(error)
        ? json(statusOf(error), { code: error.code, message: error.message })
        : json(500, { code: 'INTERNAL', message: (error as Error)?.message ?? String(error) });
    }
    if (res.destroyed) return;
    res.writeHead(reply.status, {
      'content-type': reply.contentType,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...reply.headers,
    });
    res.end(req.method === 'HEAD' ? undefined : reply.body);
  }

  private async route(routes: Map<string, HttpRoute[]>, req: http.IncomingMessage): Promise<HttpReply> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const candidates = routes.get(url.pathname);
    if (!candidates) return json(404, { code: 'NOT_FOUND', message: `no such path: ${url.pathname}` });
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const route = candidates.find((r) => r.method === method);
    if (!route) {
      return {
        ...json(405, {
          code: 'METHOD_NOT_ALLOWED',
          message: `${url.pathname} takes ${candidates.map((r) => r.method).join(', ')}`,
        }),
        headers: { allow: candidates.map((r) => r.method).join(', ') },
      };
    }
    const denied = this.authorize(route, req);
    if (denied) return denied;
    const body = route.method === 'POST' ? await readJson(req) : undefined;
    return route.handle({ url, body });
  }

  /** `undefined` when the request may use `route`; otherwise the 401/403 to answer. */
  private authorize(route: HttpRoute, req: http.IncomingMessage): HttpReply | undefined {
    const acl = this.options.acl;
    if (!acl || route.access === 'open') return undefined;
    if (acl.isWhiteListed(req.socket.remoteAddress ?? '')) return undefined;
    const challenge = {
      ...json(401, {
        code: 'ACCESS_DENIED',
        message:
          'this broker has an ACL: send HTTP Basic credentials accessKey:secretKey of one of its accounts',
      }),
      headers: { 'www-authenticate': 'Basic realm="rocketnest", charset="UTF-8"' },
    };
    const header = req.headers.authorization;
    if (!header?.startsWith('Basic ')) return challenge;
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return challenge;
    const accessKey = decoded.slice(0, colon);
    const given = Buffer.from(decoded.slice(colon + 1), 'utf8');
    const secret = acl.secretKeyOf(accessKey);
    const expected = Buffer.from(secret ?? '', 'utf8');
    // compared in constant time; an unknown account compares too, against nothing
    const same = given.length === expected.length && timingSafeEqual(given, expected);
    if (secret === undefined || !same) return challenge;
    if (route.access === 'admin' && !acl.account(accessKey)?.admin) {
      return json(403, { code: 'ACCESS_DENIED', message: `${route.path} needs an admin account` });
    }
    return undefined;
  }
}

/** Reads a request body of at most {@link MAX_HTTP_REQUEST_BYTES} and parses it as JSON (empty = `{}`). */
async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_HTTP_REQUEST_BYTES) {
      throw new RocketError('INVALID_ARGUMENT', `request body over ${MAX_HTTP_REQUEST_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks).toString('utf8').trim();
  if (raw === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new RocketError('INVALID_ARGUMENT', 'request body is not JSON');
  }
}
