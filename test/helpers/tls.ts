/**
 * A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command in a
 * temporary directory, for tests of HTTPS listeners. Outside CI a machine without openssl skips
 * those tests with a message; under CI=true they must run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipReason } from './requirement.js';

/** True when the openssl command is here. */
export const opensslAvailable = spawnSync('openssl', ['version']).status === 0;

/** Why TLS tests are skipped, or undefined when they run. */
export function tlsSkipReason(): string | undefined {
  return skipReason(opensslAvailable, 'openssl', 'HTTPS', 'openssl');
}

/** A certificate and its key, as PEM text and as files. */
export interface Certificate {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** Makes a fresh self-signed certificate (P-256, valid one day) in `dir` or a temporary directory. */
export function selfSigned(
  dir = mkdtempSync(join(tmpdir(), 'mcgravity-tls-')),
  name = 'server',
): Certificate {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}
