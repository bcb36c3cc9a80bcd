/**
 * Backends from a file that something else writes (a deploy script, consul-template, a ConfigMap
 * mounted as a volume): JSON or YAML, either a list of backends or `{ backends: [...] }`, each a URL
 * or a backend object. The file is read at start, again as soon as its directory reports a change
 * (`fs.watch`, which also sees a file replaced by a rename or a ConfigMap's symlink swap), and at
 * least every `intervalMs` in case a change went unreported (network file systems, some
 * containers). A file that is missing, unreadable or malformed is an error: the cluster keeps its
 * last good set. Write the file whole and rename it into place, so no reader sees half of it.
 */
import { watch as watchDirectory } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Clock, systemClock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { checkKnownOptions, describeValue } from '../core/validate.js';
import { type Discovery, type DiscoveryResult, Poller, type PollResult } from './Discovery.js';

/** Options of {@link fileDiscovery}. */
export interface FileDiscoveryOptions {
  /** The file's path. */
  path: string;
  /** How it is written. @default by its extension: `.yaml` and `.yml` are YAML, anything else JSON */
  format?: 'json' | 'yaml';
  /** The longest time between two reads when no change is reported. @default 10_000 */
  intervalMs?: Duration;
  /** Time source of the waits. @default systemClock */
  clock?: Clock;
}

/**
 * A {@link Discovery} reading backends from a file; see the module comment.
 * @throws TypeError naming the option that is wrong
 * @example createCluster({ name: 'api', discovery: fileDiscovery({ path: '/etc/mcgravity/api.json' }) })
 */
export function fileDiscovery(options: FileDiscoveryOptions): Discovery {
  if (options === null || typeof options !== 'object') throw new TypeError('fileDiscovery needs options');
  checkKnownOptions(options, ['path', 'format', 'intervalMs', 'clock'], 'fileDiscovery');
  if (typeof options.path !== 'string' || options.path === '') {
    throw new TypeError(`path must be a file path, got ${describeValue(options.path)}`);
  }
  const file = path.resolve(options.path);
  const format = options.format ?? (/\.ya?ml$/i.test(file) ? 'yaml' : 'json');
  if (format !== 'json' && format !== 'yaml') {
    throw new TypeError(`format must be 'json' or 'yaml', got ${describeValue(options.format)}`);
  }
  const intervalMs = optionalDuration(options.intervalMs, 'intervalMs', 10_000);
  const clock = options.clock ?? systemClock;
  return {
    description: `file ${file}`,
    [Symbol.asyncIterator]() {
      let poller: Poller | undefined;
      // The directory is watched, not the file: a rename into place replaces the file's inode.
      let watcher: ReturnType<typeof watchDirectory> | undefined;
      try {
        watcher = watchDirectory(path.dirname(file), { persistent: false }, () => poller?.wake());
        watcher.on('error', () => {}); // the directory went away: the interval still reads
      } catch {
        watcher = undefined; // no directory yet: reads at the interval report the missing file
      }
      // The last text read, so that a read finding the same text (a change to another file in the
      // directory, an interval) yields nothing.
      let last: string | undefined;
      const lookUp = async (): Promise<PollResult> => {
        const { value, text } = await read(file, format);
        const unchanged = text !== undefined && text === last;
        last = text;
        return { value, nextMs: intervalMs, unchanged };
      };
      poller = new Poller(lookUp, clock, () => watcher?.close());
      return poller;
    },
  };
}

/** The file's backends or what is wrong with it, and its text when it could be read. */
async function read(
  file: string,
  format: 'json' | 'yaml',
): Promise<{ value: DiscoveryResult; text?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { value: new Error(`file ${file}: cannot read it (${code ?? String(error)})`, { cause: error }) };
  }
  let parsed: unknown;
  try {
    parsed = format === 'json' ? JSON.parse(text) : (await import('yaml')).parse(text);
  } catch (error) {
    const message = `file ${file}: not valid ${format.toUpperCase()}: ${(error as Error).message}`;
    return { value: new Error(message, { cause: error }), text };
  }
  const list =
    parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as { backends?: unknown }).backends
      : parsed;
  if (!Array.isArray(list)) {
    const message = `file ${file}: expected a list of backends, or an object with a "backends" list`;
    return { value: new Error(message), text };
  }
  return { value: list, text };
}
