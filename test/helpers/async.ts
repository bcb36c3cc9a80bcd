/** Lets pending promise callbacks and I/O callbacks run (one macrotask turn); not a timed sleep. */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Turns the event loop until `condition()` holds, failing after `turns` turns. */
export async function until(condition: () => boolean, turns = 1000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await flush();
  }
  throw new Error(`condition not met after ${turns} event-loop turns`);
}

/**
 * Turns the event loop until `condition()` holds, failing after `timeoutMs` of wall time: for load
 * tests whose progress depends on real sockets. A bound, not a wait: it returns as soon as the
 * condition holds.
 */
export async function within(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await flush();
  }
}
