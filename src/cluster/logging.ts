/**
 * What a cluster tells its logger: every change of an endpoint's state with its reason, panic mode,
 * breaker transitions, failed health checks, and retries the budget refused. Levels: `warn` for an
 * endpoint lost or a refused retry, `error` for panic mode (most of the cluster looks down), `info`
 * for recoveries and membership changes, `debug` for each failed check.
 */
import type { EventEmitter } from 'eventemitter3';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { HealthMonitor } from '../health/HealthMonitor.js';
import type { RetryPolicy } from '../retry/RetryPolicy.js';
import type { ClusterEvents } from './options.js';

/** Refused retries are logged at most this often per cluster, with a count of those not logged. */
const BUDGET_LOG_INTERVAL_MS = 10_000;

/** Logs what happens to `cluster`. */
export function logCluster(
  name: string,
  cluster: EventEmitter<ClusterEvents>,
  logger: Logger,
  health: HealthMonitor | undefined,
  retry: RetryPolicy | undefined,
  clock: Clock,
): void {
  const at = (endpoint: string) => ({ cluster: name, endpoint });
  cluster.on('endpoint:added', ({ id }) => logger.info(at(id), 'endpoint added'));
  cluster.on('endpoint:removed', ({ id }) => logger.info(at(id), 'endpoint removed'));
  cluster.on('endpoint:draining', ({ id }) => logger.info(at(id), 'endpoint draining'));
  cluster.on('endpoint:down', ({ id, reason }) =>
    logger.warn({ ...at(id), reason }, `endpoint down: health checks failing (${reason})`),
  );
  cluster.on('endpoint:up', ({ id }) => logger.info(at(id), 'endpoint up: health checks passing'));
  cluster.on('endpoint:ejected', ({ id, reason, ejectionMs }) =>
    logger.warn({ ...at(id), reason, ejectionMs }, `endpoint ejected by outlier detection (${reason})`),
  );
  cluster.on('endpoint:restored', ({ id }) => logger.info(at(id), 'endpoint back from ejection'));
  cluster.on('circuit:open', ({ id }) => logger.warn(at(id), 'circuit open'));
  cluster.on('circuit:half-open', ({ id }) => logger.info(at(id), 'circuit half-open: probing'));
  cluster.on('circuit:close', ({ id }) => logger.info(at(id), 'circuit closed'));
  cluster.on('panic', ({ active, eligible, total }) => {
    if (active)
      logger.error(
        { cluster: name, eligible, total },
        `panic mode: only ${eligible} of ${total} endpoints eligible, balancing across all of them`,
      );
    else logger.info({ cluster: name, eligible, total }, 'panic mode over');
  });
  health?.on('check', ({ id, ok, reason, durationMs }) => {
    if (!ok) logger.debug({ ...at(id), reason, durationMs }, `health check failed (${reason ?? 'failed'})`);
  });
  let lastBudgetLog = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
  retry?.on('retry:budget-exhausted', ({ reason }) => {
    const now = clock.now();
    if (now - lastBudgetLog < BUDGET_LOG_INTERVAL_MS) {
      unlogged++;
      return;
    }
    lastBudgetLog = now;
    logger.warn(
      { cluster: name, reason, refusedSinceLastLog: unlogged },
      'retry refused: the retry budget is spent (most retries failing? see the cluster stats)',
    );
    unlogged = 0;
  });
}
