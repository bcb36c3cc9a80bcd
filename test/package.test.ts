/**
 * The package as npm would ship it: build with tsup, then load `mcgravity` through its `exports` map
 * from CommonJS and from ESM in fresh Node processes, and check the type declarations are there.
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import * as api from '../src/index.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, Record<string, Record<string, string>>>;
  files: string[];
  sideEffects: boolean;
  engines: { node: string };
};

const EXPECTED_EXPORTS = [
  'CircuitBreaker',
  'Cluster',
  'ConsistentHashBalancer',
  'GrpcStatus',
  'HealthMonitor',
  'IpHashBalancer',
  'LeastConnectionsBalancer',
  'LeastRequestBalancer',
  'MaglevBalancer',
  'McgravityError',
  'MemoryStore',
  'OutlierDetector',
  'PeakEwma',
  'PeakEwmaBalancer',
  'Pool',
  'PowerOfChoicesBalancer',
  'PriorityBalancer',
  'RandomBalancer',
  'RateLimiter',
  'RetryBudget',
  'RetryPolicy',
  'RoundRobinBalancer',
  'WeightedRoundRobinBalancer',
  'ZoneAwareBalancer',
  'balancerNames',
  'createAdmin',
  'createBalancer',
  'createCluster',
  'createProxy',
  'createTcpProxy',
  'dnsDiscovery',
  'encodeGrpcMessage',
  'errorStatus',
  'failureKind',
  'fileDiscovery',
  'grpcCheck',
  'grpcStatusOf',
  'hashKey',
  'isIdempotentMethod',
  'isMcgravityError',
  'murmur3Bytes',
  'murmur3String',
  'normalizeBackend',
  'parseDuration',
  'proxyProtocolHeader',
  'rateLimitHeaders',
  'renderPrometheus',
  'retryAfterMs',
  'servedBy',
  'setRateLimitHeaders',
  'systemClock',
  'systemRandom',
  'tcpCheck',
];

describe('package', () => {
  beforeAll(async () => {
    await run(
      process.execPath,
      [fileURLToPath(new URL('../node_modules/tsup/dist/cli-default.js', import.meta.url))],
      {
        cwd: root,
        timeout: 60_000,
      },
    );
  }, 90_000);

  it('declares what a published library should', () => {
    expect(pkg.files).toEqual(['dist', 'schema']);
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.engines.node).toBe('>=20.19');
    const root = pkg.exports['.'] as Record<string, Record<string, string>>;
    // `types` first in each condition, as TypeScript resolves in order.
    expect(Object.keys(root.import ?? {})[0]).toBe('types');
    expect(Object.keys(root.require ?? {})[0]).toBe('types');
    for (const condition of Object.values(root)) {
      for (const file of Object.values(condition))
        expect(existsSync(new URL(`../${file}`, import.meta.url))).toBe(true);
    }
  });

  it('exports the same API from the source, ESM and CommonJS builds', async () => {
    expect(Object.keys(api).sort()).toEqual(EXPECTED_EXPORTS);
    const list = 'Object.keys(m).sort().join(",")';
    const cjs = await run(process.execPath, ['-e', `const m = require('mcgravity'); console.log(${list})`], {
      cwd: root,
    });
    const esm = await run(
      process.execPath,
      ['--input-type=module', '-e', `import * as m from 'mcgravity'; console.log(${list})`],
      {
        cwd: root,
      },
    );
    expect(cjs.stdout.trim()).toBe(EXPECTED_EXPORTS.join(','));
    expect(esm.stdout.trim()).toBe(EXPECTED_EXPORTS.join(','));
  });

  it.each([
    ['mcp', 'createMcpFetch', '@modelcontextprotocol'],
    ['redis', 'RedisStore', 'ioredis'],
    ['fastify', 'mcgravity', 'node_modules/fastify/'],
  ])(
    'serves mcgravity/%s from both builds, without loading %s’s optional dependency',
    async (subpath, name, dependency) => {
      const probe = `console.log(typeof m.${name}, Object.keys(require.cache ?? {}).some((f) => f.includes('${dependency}')))`;
      const cjs = await run(process.execPath, ['-e', `const m = require('mcgravity/${subpath}'); ${probe}`], {
        cwd: root,
      });
      expect(cjs.stdout.trim()).toBe('function false');
      const esm = await run(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { ${name} } from 'mcgravity/${subpath}'; console.log(typeof ${name})`,
        ],
        { cwd: root },
      );
      expect(esm.stdout.trim()).toBe('function');
    },
  );

  it('works from the built CommonJS file', async () => {
    const script = `
      const { createBalancer } = require('mcgravity');
      const b = createBalancer('weighted-round-robin');
      b.update([{ id: 'a', url: 'http://a', weight: 5, inflight: 0 }, { id: 'b', url: 'http://b', weight: 1, inflight: 0 }, { id: 'c', url: 'http://c', weight: 1, inflight: 0 }]);
      console.log(Array.from({ length: 7 }, () => b.pick().id).join(' '));`;
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: root });
    expect(stdout.trim()).toBe('a a b a c a a');
  });

  it('ships type declarations for both module systems', () => {
    // Declarations shared by the entry points live in chunks that index.d.ts re-exports.
    const dist = new URL('../dist/', import.meta.url);
    const declarations = readdirSync(dist)
      .filter((file) => file.endsWith('.d.ts'))
      .map((file) => readFileSync(new URL(file, dist), 'utf8'))
      .join('\n');
    expect(declarations).toContain('interface Balancer<E extends Endpoint = Endpoint>');
    expect(readFileSync(new URL('index.d.ts', dist), 'utf8')).toMatch(
      /\bB as Balancer\b|interface Balancer</,
    );
    for (const entry of ['index', 'mcp', 'redis', 'prometheus', 'fastify']) {
      expect(existsSync(new URL(`${entry}.d.cts`, dist))).toBe(true);
    }
  });

  it.each(['node10', 'node16', 'bundler'])(
    'resolves the types of every entry point under moduleResolution %s',
    async (resolution) => {
      // A consumer project with the package linked into its node_modules, as npm would install it.
      const dir = mkdtempSync(join(tmpdir(), 'mcgravity-types-'));
      try {
        mkdirSync(join(dir, 'node_modules'));
        symlinkSync(root, join(dir, 'node_modules', 'mcgravity'), 'dir');
        const module = resolution === 'node16' ? 'node16' : resolution === 'bundler' ? 'esnext' : 'commonjs';
        writeFileSync(
          join(dir, 'tsconfig.json'),
          JSON.stringify({
            compilerOptions: {
              strict: true,
              noEmit: true,
              skipLibCheck: true,
              module,
              moduleResolution: resolution,
              types: [],
            },
            files: ['index.ts'],
          }),
        );
        writeFileSync(
          join(dir, 'index.ts'),
          [
            "import { createCluster } from 'mcgravity';",
            "import { createMcpFetch } from 'mcgravity/mcp';",
            "import { RedisStore } from 'mcgravity/redis';",
            "import { registerMcgravityMetrics } from 'mcgravity/prometheus';",
            "import { mcgravity } from 'mcgravity/fastify';",
            "const cluster = createCluster({ backends: ['http://127.0.0.1:1'], slowStartMs: '30s' });",
            'export const fetcher: typeof createMcpFetch = createMcpFetch;',
            'export const store: typeof RedisStore = RedisStore;',
            'export const metrics: typeof registerMcgravityMetrics = registerMcgravityMetrics;',
            'export const plugin: typeof mcgravity = mcgravity;',
            'export const name: string = cluster.name;',
          ].join('\n'),
        );
        const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
        const result = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).catch(
          (error: { stdout?: string }) => ({ stdout: error.stdout ?? String(error) }),
        );
        expect(result.stdout).toBe('');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );

  it('types the public surface', () => {
    expectTypeOf(api.createBalancer).parameter(0).toEqualTypeOf<api.BalancerName>();
    expectTypeOf<api.Endpoint['inflight']>().toEqualTypeOf<number>();
    expectTypeOf<api.PickContext['key']>().toEqualTypeOf<string | Uint8Array | undefined>();
    expectTypeOf(api.parseDuration).returns.toEqualTypeOf<number>();
    expectTypeOf<api.McgravityError['code']>().toEqualTypeOf<api.ErrorCode>();
  });
});
