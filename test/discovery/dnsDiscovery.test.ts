import { describe, expect, it } from 'vitest';
import type { DiscoveryResult } from '../../src/discovery/Discovery.js';
import { dnsDiscovery } from '../../src/discovery/dnsDiscovery.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { sourceReader } from '../helpers/discovery.js';
import { type DnsRecords, type DnsServer, startDnsServer } from '../helpers/dnsServer.js';

const defer = cleanupAfterEach();

async function dns(zone: Record<string, DnsRecords>, ttl = 30): Promise<DnsServer> {
  const server = await startDnsServer(zone, { ttl });
  defer(() => server.close());
  return server;
}

const { iterate, nextValue } = sourceReader(defer);

describe('dnsDiscovery', () => {
  it('turns A records into backends on the port, and looks again when the shortest TTL runs out', async () => {
    const server = await dns({ 'api.test': { A: ['127.0.0.2', '127.0.0.3'], ttl: 20 } });
    const clock = new ManualClock();
    const source = dnsDiscovery({
      name: 'api.test',
      port: 8080,
      servers: [server.address],
      minTtlMs: 1000,
      clock,
    });
    expect(source.description).toBe('dns A api.test');
    const iterator = iterate(source);
    expect(await nextValue(iterator)).toEqual([
      { url: 'http://127.0.0.2:8080' },
      { url: 'http://127.0.0.3:8080' },
    ]);

    server.zone.set('api.test', { A: ['127.0.0.4'], ttl: 20 });
    let second: DiscoveryResult | undefined;
    void nextValue(iterator).then((value) => {
      second = value;
    });
    await clock.advanceAsync(19_999);
    expect(server.questions).toEqual(['api.test/A']); // not asked again before the TTL ran out
    await clock.advanceAsync(1);
    await until(() => second !== undefined);
    expect(second).toEqual([{ url: 'http://127.0.0.4:8080' }]);
  });

  it('bounds the wait by minTtlMs and maxTtlMs', async () => {
    const server = await dns({
      'zero.test': { A: ['127.0.0.2'], ttl: 0 },
      'long.test': { A: ['127.0.0.2'], ttl: 86_400 },
    });
    for (const [name, wait] of [
      ['zero.test', 2_000],
      ['long.test', 60_000],
    ] as const) {
      const clock = new ManualClock();
      const iterator = iterate(
        dnsDiscovery({ name, servers: [server.address], minTtlMs: '2s', maxTtlMs: '1m', clock }),
      );
      await nextValue(iterator);
      const asked = server.questions.length;
      let done = false;
      void iterator.next().then(() => {
        done = true;
      });
      await clock.advanceAsync(wait - 1);
      expect(server.questions.length).toBe(asked);
      await clock.advanceAsync(1);
      await until(() => done);
      expect(server.questions.length).toBe(asked + 1);
    }
  });

  it('maps SRV priorities to tiers and weights to weights, resolving targets to addresses', async () => {
    const server = await dns({
      '_http._tcp.api.test': {
        SRV: [
          { priority: 10, weight: 60, port: 8001, target: 'a.api.test' },
          { priority: 10, weight: 0, port: 8002, target: 'b.api.test' },
          { priority: 20, weight: 5, port: 8003, target: '127.0.0.9' },
        ],
      },
      'a.api.test': { A: ['127.0.0.2', '127.0.0.3'] },
      'b.api.test': { A: ['127.0.0.4'] },
    });
    const source = dnsDiscovery({
      name: '_http._tcp.api.test',
      type: 'SRV',
      servers: [server.address],
      backend: { zone: 'eu-1', metadata: { team: 'search' } },
    });
    expect(await nextValue(iterate(source))).toEqual([
      {
        url: 'http://127.0.0.2:8001',
        weight: 60,
        priority: 0,
        zone: 'eu-1',
        metadata: { team: 'search', target: 'a.api.test' },
      },
      {
        url: 'http://127.0.0.3:8001',
        weight: 60,
        priority: 0,
        zone: 'eu-1',
        metadata: { team: 'search', target: 'a.api.test' },
      },
      // weight 0 beside heavier records: a very small share (RFC 2782)
      {
        url: 'http://127.0.0.4:8002',
        weight: 0.6,
        priority: 0,
        zone: 'eu-1',
        metadata: { team: 'search', target: 'b.api.test' },
      },
      {
        url: 'http://127.0.0.9:8003',
        weight: 5,
        priority: 1,
        zone: 'eu-1',
        metadata: { team: 'search', target: '127.0.0.9' },
      },
    ]);
  });

  it('resolves a target named by several SRV records once', async () => {
    const server = await dns({
      '_http._tcp.api.test': {
        SRV: [8001, 8002, 8003].map((port) => ({ priority: 0, weight: 1, port, target: 'node.api.test' })),
      },
      'node.api.test': { A: ['127.0.0.2'] },
    });
    const value = await nextValue(
      iterate(dnsDiscovery({ name: '_http._tcp.api.test', type: 'SRV', servers: [server.address] })),
    );
    expect((value as { url: string }[]).map((b) => b.url)).toEqual([
      'http://127.0.0.2:8001',
      'http://127.0.0.2:8002',
      'http://127.0.0.2:8003',
    ]);
    expect(server.questions.filter((q) => q === 'node.api.test/A')).toHaveLength(1);
  });

  it('resolves AAAA and both families, with IPv6 addresses in brackets', async () => {
    const server = await dns({ 'api.test': { A: ['127.0.0.2'], AAAA: ['::1', 'fd00::5'] } });
    const both = await nextValue(
      iterate(dnsDiscovery({ name: 'api.test', type: 'A+AAAA', scheme: 'https', servers: [server.address] })),
    );
    expect(both).toEqual([
      { url: 'https://127.0.0.2:443' },
      { url: 'https://[::1]:443' },
      { url: 'https://[fd00::5]:443' },
    ]);
  });

  it('answers an unknown name or a name without records with an empty list, a silent server with an error', async () => {
    const server = await dns({ 'empty.test': {} });
    const clock = new ManualClock();
    expect(
      await nextValue(iterate(dnsDiscovery({ name: 'gone.test', servers: [server.address], clock }))),
    ).toEqual([]);
    expect(
      await nextValue(iterate(dnsDiscovery({ name: 'empty.test', servers: [server.address], clock }))),
    ).toEqual([]);
    server.pause();
    const failed = await nextValue(
      iterate(
        dnsDiscovery({ name: 'empty.test', servers: [server.address], timeoutMs: 50, tries: 1, clock }),
      ),
    );
    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).toBe('dns A empty.test: ETIMEOUT');
  });

  it('backs off after failures, from minTtlMs doubling up to maxTtlMs', async () => {
    const server = await dns({ 'api.test': { A: ['127.0.0.2'] } });
    server.pause();
    const clock = new ManualClock();
    const iterator = iterate(
      dnsDiscovery({
        name: 'api.test',
        servers: [server.address],
        timeoutMs: 20,
        tries: 1,
        minTtlMs: 1000,
        maxTtlMs: 3000,
        clock,
      }),
    );
    expect(await nextValue(iterator)).toBeInstanceOf(Error);
    for (const wait of [1000, 2000, 3000, 3000]) {
      const asked = server.questions.length;
      let value: DiscoveryResult | undefined;
      void nextValue(iterator).then((v) => {
        value = v;
      });
      await clock.advanceAsync(wait - 1);
      expect(server.questions.length).toBe(asked);
      await clock.advanceAsync(1);
      await until(() => value !== undefined, 100_000);
      expect(value).toBeInstanceOf(Error);
    }
  });

  it('ends a pending wait at once when the iterator is returned', async () => {
    const server = await dns({ 'api.test': { A: ['127.0.0.2'] } });
    const iterator = dnsDiscovery({
      name: 'api.test',
      servers: [server.address],
      minTtlMs: '1h',
      maxTtlMs: '1h',
    })[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    await iterator.return?.();
    expect(await pending).toEqual({ value: undefined, done: true });
  });

  it.each([
    [{ name: '' }, /name must be a DNS name/],
    [{ name: 'a.test', type: 'MX' }, /type must be one of A, AAAA, A\+AAAA, SRV/],
    [{ name: 'a.test', targetType: 'SRV' }, /targetType must be 'A', 'AAAA' or 'A\+AAAA'/],
    [{ name: 'a.test', port: 0 }, /port/],
    [{ name: 'a.test', scheme: 'tcp' }, /port is needed for tcp backends/],
    [
      { name: 'a.test', minTtlMs: '10s', maxTtlMs: '1s' },
      /maxTtlMs \(1000 ms\) must not be less than minTtlMs/,
    ],
    [{ name: 'a.test', servers: ['not an address'] }, /IP address|Invalid/i],
    [{ name: 'a.test', backend: { url: 'http://x' } }, /backend.*url/],
    [{ name: 'a.test', ttl: 5 }, /ttl/],
  ])('refuses bad options: %o', (options, message) => {
    expect(() => dnsDiscovery(options as never)).toThrow(message);
  });
});
