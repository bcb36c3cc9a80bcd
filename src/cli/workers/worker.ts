/**
 * A worker process of `--workers N`: it asks the primary for the configuration, runs a Runtime
 * (without an admin listener) from it, reports its statistics every second, and applies the
 * commands the primary sends. SIGTERM (from the primary, or a terminal's Ctrl-C to the whole
 * group) drains it; losing the primary stops it.
 */
import type { Logger } from 'pino';
import { Runtime } from '../Runtime.js';
import { type FromWorker, isMessage, type ToWorker } from './messages.js';

function send(message: FromWorker): void {
  if (process.connected) process.send?.(message);
}

/** Runs this worker until it is told to stop; resolves with its exit code. */
export function runWorker(file: string, number: number, log: Logger): Promise<number> {
  return new Promise<number>((resolve) => {
    let runtime: Runtime | undefined;
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      clearInterval(reporting);
      const done = runtime === undefined ? Promise.resolve() : runtime.close();
      done.then(
        () => log.flush(() => resolve(0)),
        (error: unknown) => {
          log.error({ err: error }, 'shutdown failed');
          log.flush(() => resolve(1));
        },
      );
    };
    const reporting = setInterval(() => {
      if (runtime !== undefined) send({ type: 'snapshot', snapshot: runtime.snapshot() });
    }, 1_000);
    reporting.unref();
    process.on('message', (message: unknown) => {
      if (!isMessage<ToWorker>(message) || stopping) return;
      if (message.type === 'start') {
        // The file's log level, as the single process and the primary use it (reloads set it again).
        if (process.env.MCGRAVITY_LOG_LEVEL === undefined) log.level = message.config.global.log_level;
        Runtime.start(file, message.config, log, { worker: number }).then(
          (started) => {
            runtime = started;
            send({ type: 'started', addresses: started.addresses() });
          },
          (error: unknown) => {
            send({ type: 'failed', error: (error as Error).message });
            log.flush(() => resolve(1));
          },
        );
        return;
      }
      const { id, command } = message;
      const running = runtime;
      if (running === undefined) return;
      running.apply(command).then(
        (result) => send({ type: 'done', id, result, snapshot: running.snapshot() }),
        (error: unknown) =>
          send({ type: 'done', id, error: (error as Error).message, snapshot: running.snapshot() }),
      );
    });
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // The primary reloads everyone; a hang-up sent to the whole group must not end a worker.
    process.on('SIGHUP', () => {});
    process.on('disconnect', stop);
    send({ type: 'waiting' });
  });
}
