/**
 * `npm run demo` (`mcgravity --demo`) as a newcomer runs it: it prints where everything is, narrates
 * the failing backend being taken out, keeps every GET answered and every MCP call on its
 * session's replica, and stops cleanly on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { CLI, cliHelpers, root } from '../helpers/cli.js';

const defer = cleanupAfterEach();
const { mcgravity } = cliHelpers(defer);

describe('mcgravity --demo', () => {
  it('runs the proxy with its backends and traffic, narrates, and exits 0 on Ctrl-C', async () => {
    const child = spawn(process.execPath, [...CLI, '--demo'], { cwd: root });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    defer(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    // The first summary comes at 5 s; gamma's first failing spell starts at 4 s.
    await within(() => /\[\s*5\.\d+s\] web: \d+ GETs/.test(stdout), 20_000, 'the first summary');
    child.kill('SIGINT');
    expect(await exited).toBe(0);

    expect(stdout).toMatch(/^ {2}gamma {2}127\.0\.0\.1:\d+ {2}fails \(503\) 6 s of every 10 s$/m);
    expect(stdout).toMatch(/^status page: {2}http:\/\/127\.0\.0\.1:\d+\/ {2}\(admin token: [\w-]+\)$/m);
    expect(stdout).toMatch(/web: gamma (ejected|down)/);
    const summaries = [...stdout.matchAll(/web: (\d+) GETs, (\d+) ok, (\d+) failed/g)];
    expect(summaries.length).toBeGreaterThanOrEqual(2);
    for (const [, total, ok, failed] of summaries) {
      expect(Number(total)).toBeGreaterThan(0);
      expect(Number(ok)).toBe(Number(total));
      expect(failed).toBe('0');
    }
    expect(stdout).toMatch(/mcp: [1-9]\d* sessions, [1-9]\d* tool calls, each on its session’s replica/);
    expect(stdout).toContain('demo stopped: proxy drained, backends closed');
  });

  it('refuses a --duration it cannot read', async () => {
    const result = await mcgravity(['--demo', '--duration', 'soon']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--duration');
  });
});
