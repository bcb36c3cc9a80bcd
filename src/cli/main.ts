/**
 * `mcgravity`: the example proxy, run from a configuration file as nginx or HAProxy are.
 *
 *   mcgravity --config proxy.yaml     run (or the file in MCGRAVITY_CONFIG)
 *   mcgravity --check  proxy.yaml     validate, print the configuration with its defaults, exit
 *
 * Exit codes: 0 done (a drained shutdown included), 1 a failure while running (a port taken),
 * 2 a configuration or usage error. SIGTERM and SIGINT drain within `global.shutdown_timeout`;
 * a second one exits at once.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { stringify } from 'yaml';
import { createCluster } from '../cluster/Cluster.js';
import { type Duration, parseDuration } from '../core/duration.js';
import { clusterOptions, workerCount } from './build.js';
import { ConfigError, formatPath, loadConfig } from './config/load.js';
import type { ProxyConfig } from './config/schema.js';
import { runDemo } from './demo/demo.js';
import { processLog } from './logs.js';
import { type ReloadSummary, Runtime } from './Runtime.js';
import { Primary } from './workers/Primary.js';
import { runWorker } from './workers/worker.js';

const USAGE = `Usage: mcgravity [--config FILE] [options]

Runs the mcgravity proxy from a configuration file (YAML or JSON).

Options:
  -c, --config FILE   the configuration (default: $MCGRAVITY_CONFIG)
  -w, --workers N     worker processes sharing the listeners, or auto for one per core
                      (default: global.workers, 1)
      --check         validate the configuration, print it with its defaults, and exit
      --demo          run the proxy in front of three local demo backends, with traffic
      --duration T    with --demo: stop after T (e.g. 30s) instead of at Ctrl-C
  -v, --version       print the version
  -h, --help          print this help

Environment:
  MCGRAVITY_CONFIG     the configuration file, when --config is not given
  MCGRAVITY_LOG_LEVEL  overrides global.log_level (fatal, error, warn, info, debug, trace, silent)

Signals: SIGTERM and SIGINT drain and exit; SIGHUP reloads the configuration.
Exit codes: 0 done, 1 failure while running, 2 configuration or usage error.
Docs: docs/cli.md and docs/configuration.md`;

/** Where the program writes; a test passes its own. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** The package's version, from the package.json above this file (source or build). */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'mcgravity' && pkg.version !== undefined) return pkg.version;
    } catch {
      // not here: look further up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/** Builds every cluster once (and closes it), to catch what only the library checks. */
async function checkBuild(config: ProxyConfig, file: string): Promise<void> {
  const problems = [];
  for (const [name, cluster] of Object.entries(config.clusters)) {
    try {
      await createCluster({ ...clusterOptions(name, cluster, config, undefined, file), health: false }).close(
        {
          timeoutMs: 0,
        },
      );
    } catch (error) {
      problems.push({ path: formatPath(['clusters', name]), message: (error as Error).message });
    }
  }
  if (problems.length > 0) throw new ConfigError(file, problems);
}

/** Runs the command line; resolves with the exit code once the proxy has stopped (or at once). */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (error) {
    io.err(`mcgravity: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = args;
  if (values.help) {
    io.out(`${USAGE}\n`);
    return 0;
  }
  if (values.version) {
    io.out(`mcgravity ${version()}\n`);
    return 0;
  }
  if (values.demo) {
    let durationMs: number | undefined;
    try {
      durationMs =
        values.duration === undefined ? undefined : parseDuration(values.duration as Duration, '--duration');
    } catch (error) {
      io.err(`mcgravity: ${(error as Error).message}\n`);
      return 2;
    }
    // The demo narrates on stdout; the process log keeps to errors unless asked.
    const log = processLog(process.env.MCGRAVITY_LOG_LEVEL ?? 'error');
    return runDemo({
      out: (line) => io.out(`${line}\n`),
      log,
      ...(durationMs === undefined ? {} : { durationMs }),
    });
  }
  const file = values.config ?? positionals[0] ?? process.env.MCGRAVITY_CONFIG;
  if (cluster.isWorker && file !== undefined) {
    // A worker of --workers: the primary checked the file and sends the configuration.
    const log = processLog(process.env.MCGRAVITY_LOG_LEVEL ?? 'info').child({
      worker: Number(process.env.MCGRAVITY_WORKER),
    });
    return runWorker(file, Number(process.env.MCGRAVITY_WORKER), log);
  }
  if (file === undefined || file === '') {
    io.err(`mcgravity: no configuration: pass --config FILE or set MCGRAVITY_CONFIG\n\n${USAGE}\n`);
    return 2;
  }
  let config: ProxyConfig;
  try {
    config = loadConfig(file);
    if (values.check) await checkBuild(config, file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(`${error.message}\n`);
    return 2;
  }
  if (values.check) {
    io.out(`# ${file}: valid\n${stringify(config)}`);
    return 0;
  }
  let workers: number;
  try {
    workers = workerCount(parseWorkers(values.workers) ?? config.global.workers);
  } catch (error) {
    io.err(`mcgravity: ${(error as Error).message}\n`);
    return 2;
  }
  return run(file, config, workers);
}

/** `--workers N` or `auto`; undefined when not given. */
function parseWorkers(value: string | undefined): number | 'auto' | undefined {
  if (value === undefined || value === 'auto') return value;
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > 256)
    throw new Error(`--workers must be a number from 1 to 256, or auto; got ${JSON.stringify(value)}`);
  return count;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      workers: { type: 'string', short: 'w' },
      demo: { type: 'boolean', default: false },
      duration: { type: 'string' },
      check: { type: 'boolean', default: false },
      version: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

/**
 * Reads the file again and applies it. A file with mistakes, or one whose clusters, certificates or
 * ports cannot be set up, leaves the running configuration in place; either way the log says what
 * happened.
 */
async function reload(file: string, runtime: Running, log: Logger): Promise<void> {
  log.info({ file }, 'SIGHUP: reloading the configuration');
  let config: ProxyConfig;
  try {
    config = loadConfig(file);
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems.length : 1;
    log.error(
      { file, problems, detail: (error as Error).message },
      'reload refused: the file has mistakes; the running configuration stays',
    );
    return;
  }
  try {
    const summary = await runtime.reload(config);
    for (const warning of summary.warnings) log.warn(warning);
    log.info(summary, 'reloaded');
  } catch (error) {
    log.error({ err: error }, `reload failed: ${(error as Error).message}; the running configuration stays`);
  }
}

/** A running proxy: one process, or a primary and its workers. */
interface Running {
  addresses(): Record<string, string>;
  reload(config: ProxyConfig): Promise<ReloadSummary>;
  close(): Promise<void>;
}

/**
 * Runs the proxy (in `workers` processes when more than one) until SIGTERM or SIGINT; resolves
 * with the exit code. SIGHUP reloads.
 */
async function run(file: string, config: ProxyConfig, workers: number): Promise<number> {
  const log = processLog(process.env.MCGRAVITY_LOG_LEVEL ?? config.global.log_level);
  let runtime: Running;
  let fatal: Promise<Error> = new Promise(() => {});
  try {
    if (workers === 1) runtime = await Runtime.start(file, config, log);
    else {
      const primary = await Primary.start(file, config, log, workers);
      fatal = new Promise((resolve) => primary.onFatal(resolve));
      runtime = primary;
    }
  } catch (error) {
    log.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    return 1;
  }
  for (const [name, url] of Object.entries(runtime.addresses()))
    log.info({ listener: name, url }, `${name} on ${url}`);
  log.info({ file, pid: process.pid, workers }, 'mcgravity started');
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without waiting');
        resolve(1);
        return;
      }
      stopping = true;
      log.info({ signal }, 'draining: requests in flight may finish');
      runtime.close().then(
        () => {
          log.info('stopped');
          log.flush(() => resolve(0));
        },
        (error: unknown) => {
          log.error({ err: error }, 'shutdown failed');
          log.flush(() => resolve(1));
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    void fatal.then((error) => {
      log.fatal({ err: error }, `stopping: ${error.message}`);
      stopping = true;
      runtime.close().finally(() => log.flush(() => resolve(1)));
    });
    process.on('SIGHUP', () => {
      if (!stopping) void reload(file, runtime, log);
    });
  });
}
