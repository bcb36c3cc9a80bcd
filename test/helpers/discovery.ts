import type { DiscoveryResult } from '../../src/discovery/Discovery.js';

/**
 * Reading a discovery source in a test: `iterate()` starts an iteration that is returned after the
 * test, `nextValue()` takes its next value (failing if the source ended).
 */
export function sourceReader(defer: (stop: () => Promise<unknown>) => void) {
  return {
    iterate(source: AsyncIterable<DiscoveryResult>): AsyncIterator<DiscoveryResult> {
      const iterator = source[Symbol.asyncIterator]();
      defer(async () => iterator.return?.());
      return iterator;
    },
    async nextValue(iterator: AsyncIterator<DiscoveryResult>): Promise<DiscoveryResult> {
      const step = await iterator.next();
      if (step.done === true) throw new Error('the source ended');
      return step.value;
    },
  };
}
