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
    // Summaries every 5 s; gamma fails from 4 s to 10 s, is ejected and taken down, then returns.
    await within(() => /web: gamma (back from ejection|up again)/.test(stdout), 30_000, 'gamma back');
    const returned = stdout.length;
    await within(() => /web: \d+ GETs/.test(stdout.slice(returned)), 10_000, 'a summary after that');
    child.kill('SIGINT');
    expect(await exited).toBe(0);

    expect(stdout).toMatch(/^ {2}gamma {2}127\.0\.0\.1:\d+ {2}fails \(503\) 6 s of every 10 s$/m);
    expect(stdout).toMatch(/^status page: {2}http:\/\/127\.0\.0\.1:\d+\/ {2}\(admin token: [\w-]+\)$/m);
    // Traffic on all three, then gamma out, then back.
    const first = /alpha (\d+) {2}beta (\d+) {2}gamma (\d+)/.exec(stdout);
    expect(
      first
        ?.slice(1)
        .map(Number)
        .every((count) => count > 0),
    ).toBe(true);
    expect(stdout.indexOf('web: gamma ejected')).not.toBe(-1);
    expect(stdout.search(/web: gamma (back from ejection|up again)/)).toBeGreaterThan(
      stdout.indexOf('web: gamma ejected'),
    );
    const summaries = [...stdout.matchAll(/web: (\d+) GETs, (\d+) ok, (\d+) failed/g)];
    expect(summaries.length).toBeGreaterThanOrEqual(3);
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
