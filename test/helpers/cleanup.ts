import { afterEach } from 'vitest';

/**
 * What a test started, stopped after it: `defer(stop)` registers a stop, and after each test the
 * stops run newest first (a proxy before its cluster, a cluster before its upstreams). With
 * `ignoreErrors`, a stop that fails (a server the test already killed) does not fail the test.
 */
export function cleanupAfterEach(
  options: { ignoreErrors?: boolean } = {},
): (stop: () => Promise<unknown>) => void {
  const stops: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) {
      if (options.ignoreErrors === true) await stop().catch(() => {});
      else await stop();
    }
  });
  return (stop) => {
    stops.push(stop);
  };
}
