import { request } from 'undici';

/** What {@link loadGets} saw: who answered (the body's text) and every failure. */
export interface GetLoad {
  readonly answers: Map<string, number>;
  readonly failures: string[];
  /** Requests sent so far. */
  sent(): number;
  /** Stops the loops and waits for their last requests. */
  stop(): Promise<void>;
}

/**
 * `clients` loops of GETs to `url()` until stopped (or `maxRequests` were sent, a bound for a test
 * that fails before it stops them): counts each answer's body and records every non-200 or error.
 */
export function loadGets(
  url: () => string,
  defer: (stop: () => Promise<unknown>) => void,
  options: { clients?: number; maxRequests?: number } = {},
): GetLoad {
  const answers = new Map<string, number>();
  const failures: string[] = [];
  const maxRequests = options.maxRequests ?? 20_000;
  let running = true;
  let sent = 0;
  const loops = Array.from({ length: options.clients ?? 32 }, async () => {
    while (running && sent < maxRequests) {
      sent++;
      try {
        const response = await request(url());
        const text = await response.body.text();
        if (response.statusCode !== 200) failures.push(`${response.statusCode} ${text}`);
        else answers.set(text, (answers.get(text) ?? 0) + 1);
      } catch (error) {
        failures.push(String(error));
      }
    }
  });
  const stop = async () => {
    running = false;
    await Promise.all(loops);
  };
  defer(stop);
  return { answers, failures, stop, sent: () => sent };
}
