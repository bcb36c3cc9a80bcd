/**
 * The README's TypeScript snippets run here as a user would paste them: against the package as npm
 * would install it (built JavaScript, resolved through the `exports` map), once as an ES module and
 * once as CommonJS, and type-checked under `strict` with `exactOptionalPropertyTypes`. A snippet
 * only assumes what a reader would have (a `url` to call, a `clientId`); the harness below gives
 * it those, points its addresses at loopback servers, prints what it did and closes what it opened.
 * A snippet without a harness fails the suite, so the front page never rots.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

interface Harness {
  /** Recognises the snippet. */
  readonly match: RegExp;
  /** Code before the snippet: what it assumes exists. */
  readonly before?: string;
  /** Text of the snippet swapped for the test's own (ports that must be free). */
  readonly replace?: readonly (readonly [string, string])[];
  /** Code after the snippet: print the outcome, close what it opened. */
  readonly after: string;
  /** What the snippet must print. */
  readonly prints: RegExp;
}

/** Starts a loopback server that answers every request with `body`; resolves to its URL. */
const serve = (name: string, body: string) => `
const ${name} = createServer((_req, res) => res.end(${JSON.stringify(body)})).listen(0, '127.0.0.1');
await once(${name}, 'listening');
const ${name}Url = \`http://127.0.0.1:\${(${name}.address() as AddressInfo).port}\`;`;

const serverImports = `import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';`;

const harnesses: readonly Harness[] = [
  {
    match: /createBalancer\('least-request'\)/,
    after: `console.log(endpoint?.id, retry?.id, String(sessions.pick({ key: 'session-42' })));`,
    // Two endpoints: the retry is always the other one; an empty balancer picks nothing.
    prints: /^(a b|b a) undefined$/,
  },
  {
    match: /new CircuitBreaker\(/,
    before: `${serverImports}${serve('service', 'fresh data')}
const url = \`\${serviceUrl}/data\`;
const clientId = '203.0.113.7';`,
    after: `console.log(data.status, await data.text(), allowed, retryAfterMs, breaker.state);
service.close();`,
    prints: /^200 fresh data true 0 closed$/,
  },
  {
    match: /createProxy\(\{/,
    before: `${serverImports}${serve('first', 'from first')}${serve('second', 'from second')}`,
    replace: [
      ["'http://127.0.0.1:3001'", 'firstUrl'],
      ["'http://127.0.0.1:3002'", 'secondUrl'],
      ['await proxy.listen(8080);', 'const server = await proxy.listen(0);'],
    ],
    after: `const at = \`http://127.0.0.1:\${(server.address() as AddressInfo).port}/\`;
const answer = await fetch(at);
const cookie = answer.headers.get('set-cookie') ?? '';
const bodies = [await answer.text()];
for (let i = 0; i < 3; i++) bodies.push(await (await fetch(at, { headers: { cookie: cookie.split(';')[0] ?? '' } })).text());
console.log(cookie.startsWith('mcg=') ? 'cookie set' : 'no cookie', new Set(bodies).size === 1 ? 'same backend' : bodies.join());
await proxy.close();
first.close();
second.close();`,
    // The affinity cookie keeps the client on the backend that answered first.
    prints: /^cookie set same backend$/,
  },
  {
    match: /createMcpFetch\(/,
    after: `console.log(typeof fetch, transport.sessionId);`,
    // Building the client touches no network; docs/mcp.md and the examples run it end to end.
    prints: /^function undefined$/,
  },
];

/** The ```ts blocks of the README, in order. */
function snippets(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
}

function assemble(snippet: string, harness: Harness): string {
  let body = snippet;
  for (const [from, to] of harness.replace ?? []) {
    if (!body.includes(from)) throw new Error(`the README snippet no longer contains ${from}`);
    body = body.replaceAll(from, to);
  }
  return [harness.before ?? '', body, harness.after].join('\n');
}

/** CommonJS has no top-level await: imports stay at the top, the rest runs in an async function. */
function asCommonJs(source: string): string {
  const lines = source.split('\n');
  const isImport = (line: string) => /^import\s/.test(line);
  return [
    ...lines.filter(isImport),
    'void (async () => {',
    ...lines.filter((line) => !isImport(line)),
    '})();',
  ].join('\n');
}

describe('README', () => {
  const blocks = snippets();
  let dir = '';

  beforeAll(async () => {
    // The package as npm would install it: package.json and a JavaScript build (declarations are
    // package.test.ts's concern), linked into a consumer project's node_modules.
    dir = mkdtempSync(join(tmpdir(), 'mcgravity-readme-'));
    const pkg = join(dir, 'package');
    mkdirSync(pkg);
    copyFileSync(join(root, 'package.json'), join(pkg, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');
    await run(
      process.execPath,
      [
        join(root, 'node_modules/tsup/dist/cli-default.js'),
        '--no-dts',
        '--no-sourcemap',
        '--out-dir',
        join(pkg, 'dist'),
      ],
      { cwd: root, timeout: 60_000 },
    );
    const consumer = join(dir, 'app');
    mkdirSync(join(consumer, 'node_modules', '@modelcontextprotocol'), { recursive: true });
    symlinkSync(pkg, join(consumer, 'node_modules', 'mcgravity'), 'dir');
    symlinkSync(
      join(root, 'node_modules', '@modelcontextprotocol', 'sdk'),
      join(consumer, 'node_modules', '@modelcontextprotocol', 'sdk'),
      'dir',
    );
    symlinkSync(join(root, 'node_modules', '@types'), join(consumer, 'node_modules', '@types'), 'dir');
  }, 90_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has a harness for every snippet, and a snippet for every harness', () => {
    const unmatched = blocks.filter((block) => !harnesses.some((h) => h.match.test(block)));
    expect(unmatched).toEqual([]);
    for (const harness of harnesses) expect(blocks.filter((b) => harness.match.test(b))).toHaveLength(1);
  });

  it.each(harnesses.map((h, i) => [i + 1, h] as const))(
    'snippet %i runs as an ES module and as CommonJS',
    async (index, harness) => {
      const snippet = blocks.find((block) => harness.match.test(block));
      if (snippet === undefined) throw new Error(`no README snippet matches ${harness.match}`);
      const source = assemble(snippet, harness);
      const app = join(dir, 'app');
      writeFileSync(join(app, `snippet-${index}.mts`), source);
      writeFileSync(join(app, `snippet-${index}.cts`), asCommonJs(source));
      for (const file of [`snippet-${index}.mts`, `snippet-${index}.cts`]) {
        // The process must end by itself: a snippet that leaves a handle open times out here.
        const { stdout } = await run(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), file], {
          cwd: app,
          timeout: 15_000,
          env: { ...process.env, AFFINITY_SECRET: 'readme-test-secret-0123456789' },
        });
        expect(stdout.trim(), file).toMatch(harness.prints);
      }
    },
    40_000,
  );

  it('type-checks every snippet under strict TypeScript', async () => {
    const app = join(dir, 'app');
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          noEmit: true,
          skipLibCheck: true,
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: ['node'],
          // Types from the source: the build above has no declarations.
          paths: {
            mcgravity: [join(root, 'src/index.ts')],
            'mcgravity/mcp': [join(root, 'src/mcp/index.ts')],
          },
        },
        include: ['snippet-*.mts'],
      }),
    );
    harnesses.forEach((harness, i) => {
      const snippet = blocks.find((block) => harness.match.test(block)) ?? '';
      writeFileSync(join(app, `snippet-${i + 1}.mts`), assemble(snippet, harness));
    });
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', app], { cwd: app }).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? String(error) }),
    );
    expect(result.stdout).toBe('');
  }, 60_000);
});
