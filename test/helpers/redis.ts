/**
 * A real redis-server for tests, started on a free loopback port with persistence off, and stopped
 * with the test. Outside CI a machine without redis-server skips those tests with a message; under
 * CI=true they must run, so a missing server fails them.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { skipReason } from './requirement.js';
import { closedPort } from './upstreams.js';

/** True when redis-server can be started here. */
export const redisAvailable = spawnSync('redis-server', ['--version']).status === 0;

/** Why Redis tests are skipped, or undefined when they run. */
export function redisSkipReason(): string | undefined {
  return skipReason(redisAvailable, 'redis-server', 'Redis', 'redis-server');
}

/** A running redis-server. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts redis-server on a free port and resolves once it accepts connections. */
export async function startRedis(): Promise<RedisServer> {
  const port = await closedPort();
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      'notice',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
  });
  child.removeAllListeners('exit');
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(); // stopped already
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
