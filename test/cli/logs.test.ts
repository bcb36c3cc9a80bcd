/**
 * The command's logs: access-log lines with every field, files rotated by size through pino-roll
 * (written by a worker thread, so the test waits for the files rather than for time).
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/cli/config/load.js';
import { accessLine, accessLog } from '../../src/cli/logs.js';
import type { AccessLogEntry } from '../../src/proxy/createProxy.js';

function entry(i: number): AccessLogEntry {
  return {
    time: new Date(1_800_000_000_000 + i).toISOString(),
    requestId: `req-${i}`,
    client: '127.0.0.1',
    method: 'GET',
    path: `/orders/${i}`,
    status: 200,
    cluster: 'web',
    endpoint: '127.0.0.1:3001',
    attempts: 1,
    durationMs: 1.5,
    bytesIn: 0,
    bytesOut: 120,
    userAgent: undefined,
    error: undefined,
  };
}

describe('access log', () => {
  it('rotates at max_size, keeps max_files, and every line is JSON with every field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-logs-'));
    const config = parseConfig(
      `clusters: { web: { backends: [{ address: "127.0.0.1:1" }] } }
listeners: [{ name: web, address: "127.0.0.1:0", cluster: web }]
access_log: { path: logs/access.log, rotation: { max_size: 4KB, max_files: 3 } }
`,
      join(dir, 'proxy.yaml'),
    );
    const log = accessLog(config, join(dir, 'proxy.yaml'));
    if (log === undefined) throw new Error('no access log');
    // ~250 bytes a line: 40 lines fill a 4 KiB file about twice and a half.
    // Flushed line by line: a file is rotated once a write takes it past max_size.
    for (let i = 0; i < 40; i++) {
      log(entry(i));
      await log.flush();
    }
    await log.close();
    const files = readdirSync(join(dir, 'logs')).filter((f) => f.startsWith('access.'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    expect(files.length).toBeLessThanOrEqual(3 + 1);
    const lines = files.flatMap((f) =>
      readFileSync(join(dir, 'logs', f), 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean),
    );
    // pino-roll checks the size as writes complete, so a file may take a line or two past max_size.
    for (const file of files) expect(statSync(join(dir, 'logs', file)).size).toBeLessThan(4096 * 1.5);
    for (const line of lines) {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(parsed).sort()).toEqual(Object.keys(entry(0)).sort());
      expect(parsed.userAgent).toBeNull();
    }
    // The newest lines are all there (older files beyond max_files may be gone).
    expect(lines.some((l) => l.includes('"requestId":"req-39"'))).toBe(true);
  });

  it('writes each line as JSON.stringify would, with null for what is absent', () => {
    const odd = {
      ...entry(7),
      path: '/a"b\\c\n\u2028é?q=1',
      userAgent: 'curl/8 "x"',
      error: 'EABORTED' as const,
    };
    for (const e of [entry(1), odd]) {
      const expected = JSON.stringify(e, (_key, value: unknown) => (value === undefined ? null : value));
      expect(accessLine(e)).toBe(`${expected}\n`);
    }
  });
});
