import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { tempDir } from './temp-dir';

/** A self-signed certificate (it is its own CA) for localhost / 127.0.0.1, and its key. */
export interface TestCert {
  certFile: string;
  keyFile: string;
}

/**
 * Generates throwaway self-signed certificates with openssl in a temp dir (no key is ever
 * committed); `cleanup()` removes them.
 */
export function generateTestCerts(names: string[]): { certs: Record<string, TestCert>; cleanup(): void } {
  const t = tempDir('rocketnest-tls-');
  const certs: Record<string, TestCert> = {};
  for (const name of names) {
    const certFile = path.join(t.dir, `${name}.cert.pem`);
    const keyFile = path.join(t.dir, `${name}.key.pem`);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=localhost`,
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: 'ignore' },
    );
    certs[name] = { certFile, keyFile };
  }
  return { certs, cleanup: t.cleanup };
}
