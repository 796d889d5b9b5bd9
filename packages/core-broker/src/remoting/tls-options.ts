import { readFileSync } from 'node:fs';
import type { ConnectionOptions, TlsOptions } from 'node:tls';
import { RocketError } from '../common/errors';

/**
 * TLS on the remoting protocol (RocketMQ's `tls.enable`, `tls.server.*` and `tls.client.*`
 * settings). Certificates and keys are PEM files, read once when the server starts listening or the
 * client is created; a file that cannot be read fails there with `INVALID_OPTION` naming it.
 */
export interface ServerTlsOptions {
  /** PEM certificate chain the server presents (RocketMQ `tls.server.certPath`). Required. */
  certFile: string;
  /** PEM private key of that certificate (RocketMQ `tls.server.keyPath`). Required. */
  keyFile: string;
  /** PEM CA bundle client certificates are checked against (RocketMQ `tls.server.trustCertPath`). Default: the system CAs. */
  caFile?: string;
  /**
   * Ask clients for a certificate and refuse those without a valid one (mutual TLS; RocketMQ
   * `tls.server.need.client.auth=require`). Default false.
   */
  requestClientCert?: boolean;
}

/** `true` uses the system CAs and verifies the server (RocketMQ `tls.enable=true` on the client). */
export interface ClientTlsOptions {
  /** PEM CA bundle the server's certificate is checked against (RocketMQ `tls.client.trustCertPath`). Default: the system CAs. */
  caFile?: string;
  /** Refuse a server whose certificate does not verify (RocketMQ `tls.client.authServer`). Default true. */
  rejectUnauthorized?: boolean;
  /** Name the server's certificate must carry, and SNI. Default: the host of the address (not sent for IP addresses). */
  servername?: string;
  /** PEM client certificate, for servers that ask for one (RocketMQ `tls.client.certPath`). Default none. */
  certFile?: string;
  /** PEM private key of `certFile` (RocketMQ `tls.client.keyPath`). Default none. */
  keyFile?: string;
}

function readPem(owner: string, field: string, file: unknown): Buffer {
  if (typeof file !== 'string' || file === '') {
    throw new RocketError('INVALID_OPTION', `${owner} option tls.${field} must be a file path`);
  }
  try {
    return readFileSync(file);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new RocketError('INVALID_OPTION', `${owner} option tls.${field}: cannot read "${file}": ${why}`, {
      cause,
    });
  }
}

/** The `tls.createServer` options of a server's `tls` option (reads its files). */
export function loadServerTls(owner: string, tls: ServerTlsOptions): TlsOptions {
  if (typeof tls !== 'object' || tls === null) {
    throw new RocketError(
      'INVALID_OPTION',
      `${owner} option tls must be { certFile, keyFile, caFile?, requestClientCert? }`,
    );
  }
  const requestCert = tls.requestClientCert === true;
  return {
    cert: readPem(owner, 'certFile', tls.certFile),
    key: readPem(owner, 'keyFile', tls.keyFile),
    ...(tls.caFile === undefined ? {} : { ca: readPem(owner, 'caFile', tls.caFile) }),
    requestCert,
    rejectUnauthorized: requestCert,
  };
}

/** The `tls.connect` options of a client's `tls` option (reads its files); undefined when TLS is off. */
export function loadClientTls(
  owner: string,
  tls: true | ClientTlsOptions | undefined,
): ConnectionOptions | undefined {
  if (tls === undefined) return undefined;
  if (tls === true) return { rejectUnauthorized: true };
  if (typeof tls !== 'object' || tls === null) {
    throw new RocketError(
      'INVALID_OPTION',
      `${owner} option tls must be true or { caFile?, rejectUnauthorized?, … }`,
    );
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new RocketError('INVALID_OPTION', `${owner} options tls.certFile and tls.keyFile go together`);
  }
  return {
    rejectUnauthorized: tls.rejectUnauthorized !== false,
    ...(tls.caFile === undefined ? {} : { ca: readPem(owner, 'caFile', tls.caFile) }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
    ...(tls.certFile === undefined ? {} : { cert: readPem(owner, 'certFile', tls.certFile) }),
    ...(tls.keyFile === undefined ? {} : { key: readPem(owner, 'keyFile', tls.keyFile) }),
  };
}
