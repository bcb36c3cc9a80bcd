/**
 * The `mcgravity` command as a child process, for tests: run to its end, or started and followed
 * through its log (the URL of each listener, every log entry, the access log on stdout).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { within } from './async.js';

const run = promisify(execFile);
/** The repository's root. */
export const root = fileURLToPath(new URL('../..', import.meta.url));
/** Node arguments that run the command from source (tsx by path, so that it runs from any directory). */
export const CLI = [
  '--import',
  pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href,
  join(root, 'src/cli/bin.ts'),
];

/** A running proxy process: its listeners' URLs (from its log) and what it printed. */
export interface Running {
  readonly child: ChildProcess;
  readonly urls: Record<string, string>;
  readonly stdout: string[];
  /** The process log's entries so far. */
  readonly log: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
}

/** The command's helpers, stopping what they start through `defer`. */
export function cliHelpers(defer: (stop: () => Promise<unknown>) => void) {
  /** Runs the command to its end. */
  async function mcgravity(
    args: string[],
    cwd = root,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], { cwd, timeout: 30_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  async function start(configFile: string, args: readonly string[] = []): Promise<Running> {
    const child = spawn(process.execPath, [...CLI, '--config', configFile, ...args], {
      cwd: root,
      env: { ...process.env, MCGRAVITY_AFFINITY_SECRET: 'test-affinity-secret-0123' },
    });
    const urls: Record<string, string> = {};
    const stdout: string[] = [];
    const log: Record<string, unknown>[] = [];
    let started = false;
    let errors = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    /** Calls `into` with each whole line of `stream` (a chunk may end mid-line). */
    const lines = (stream: NodeJS.ReadableStream, into: (line: string) => void) => {
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) if (line.trim() !== '') into(line);
      });
    };
    lines(child.stderr, (line) => {
      errors += `${line}\n`;
      const entry = JSON.parse(line) as { listener?: string; url?: string; msg?: string };
      log.push(entry);
      if (entry.listener !== undefined && entry.url !== undefined) urls[entry.listener] = entry.url;
      if (entry.msg === 'mcgravity started') started = true;
    });
    lines(child.stdout, (line) => stdout.push(line));
    defer(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    await Promise.race([
      within(() => started, 20_000, 'the proxy started'),
      exited.then((code) => {
        throw new Error(`mcgravity exited with ${code}: ${errors}`);
      }),
    ]);
    return { child, urls, stdout, log, exited };
  }

  return { mcgravity, start };
}
