import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DiscoveryResult } from '../../src/discovery/Discovery.js';
import { fileDiscovery } from '../../src/discovery/fileDiscovery.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { sourceReader } from '../helpers/discovery.js';

const defer = cleanupAfterEach();

async function directory(): Promise<string> {
  const made = await mkdtemp(path.join(tmpdir(), 'mcgravity-discovery-'));
  defer(() => rm(made, { recursive: true, force: true }));
  return made;
}

const { iterate, nextValue } = sourceReader(defer);

/** Writes the file whole and renames it into place, as the docs ask writers to. */
async function replace(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

describe('fileDiscovery', () => {
  it('reads a JSON list, and again as soon as the file is replaced, without waiting for the interval', async () => {
    const file = path.join(await directory(), 'api.json');
    await writeFile(
      file,
      JSON.stringify(['http://127.0.0.1:8001', { url: 'http://127.0.0.1:8002', weight: 3 }]),
    );
    const clock = new ManualClock();
    const iterator = iterate(fileDiscovery({ path: file, intervalMs: '1h', clock }));
    expect(await nextValue(iterator)).toEqual([
      'http://127.0.0.1:8001',
      { url: 'http://127.0.0.1:8002', weight: 3 },
    ]);
    const next = nextValue(iterator);
    await replace(file, JSON.stringify({ backends: ['http://127.0.0.1:8003'] }));
    expect(await next).toEqual(['http://127.0.0.1:8003']); // the clock never moved: the watcher woke it
  });

  it('reads YAML by its extension', async () => {
    const file = path.join(await directory(), 'api.yaml');
    await writeFile(
      file,
      'backends:\n  - url: http://127.0.0.1:8001\n    zone: eu-1\n  - http://127.0.0.1:8002\n',
    );
    expect(await nextValue(iterate(fileDiscovery({ path: file })))).toEqual([
      { url: 'http://127.0.0.1:8001', zone: 'eu-1' },
      'http://127.0.0.1:8002',
    ]);
  });

  it('reads at the interval where no change can be watched, and yields only what changed', async () => {
    // The directory does not exist yet, so nothing watches it: only the interval reads.
    const folder = path.join(await directory(), 'later');
    const file = path.join(folder, 'api.json');
    const clock = new ManualClock();
    const iterator = iterate(fileDiscovery({ path: file, intervalMs: '5s', clock }));
    expect(await nextValue(iterator)).toBeInstanceOf(Error);
    await mkdir(folder);
    await writeFile(file, '["http://127.0.0.1:8001"]');
    let values = 0;
    let latest: DiscoveryResult | undefined;
    void (async () => {
      for (;;) {
        latest = await nextValue(iterator).catch(() => undefined);
        if (latest === undefined) return;
        values++;
      }
    })();
    await clock.advanceAsync(4999);
    expect(values).toBe(0);
    await clock.advanceAsync(1);
    await until(() => values === 1, 100_000);
    expect(latest).toEqual(['http://127.0.0.1:8001']);
    await clock.advanceAsync(5000); // read again, the same text: nothing yielded
    await until(() => clock.pending === 1, 100_000);
    await writeFile(file, '["http://127.0.0.1:8002"]');
    await clock.advanceAsync(5000);
    await until(() => values === 2, 100_000);
    expect(latest).toEqual(['http://127.0.0.1:8002']);
  });

  it.each([
    ['missing.json', undefined, /cannot read it \(ENOENT\)/],
    ['bad.json', '["http://127.0.0.1:8001",', /not valid JSON/],
    ['bad.yaml', 'backends: [a, b', /not valid YAML/],
    ['shape.json', '{"servers": []}', /expected a list of backends, or an object with a "backends" list/],
  ])('reports %s as an error naming the file', async (name, text, message) => {
    const file = path.join(await directory(), name);
    if (text !== undefined) await writeFile(file, text);
    const value = await nextValue(iterate(fileDiscovery({ path: file })));
    expect(value).toBeInstanceOf(Error);
    expect((value as Error).message).toContain(file);
    expect((value as Error).message).toMatch(message);
  });

  it.each([
    [{ path: '' }, /path must be a file path/],
    [{ path: 'a.json', format: 'toml' }, /format must be 'json' or 'yaml'/],
    [{ path: 'a.json', intervalMs: 'soon' }, /intervalMs/],
    [{ path: 'a.json', watch: false }, /watch/],
  ])('refuses bad options: %o', (options, message) => {
    expect(() => fileDiscovery(options as never)).toThrow(message);
  });
});
