import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createProxy } from '../../src/proxy/createProxy.js';
import { flush } from '../helpers/async.js';
import { startUpstream } from '../helpers/upstreams.js';

describe('affinity secret', () => {
  it('warns once that tokens signed with a random secret are valid in this process only', async () => {
    const warnings: Error[] = [];
    const listen = (warning: Error) => warnings.push(warning);
    process.on('warning', listen);
    try {
      const cluster = { backends: ['http://127.0.0.1:1'] };
      const withSecret = createProxy({
        cluster,
        sessionAffinity: { cookie: 'mcg' },
        affinitySecret: 'x'.repeat(32),
      });
      const byAddress = createProxy({ cluster, sessionAffinity: 'ip' }); // no token leaves the process
      await flush();
      expect(warnings).toEqual([]);
      const first = createProxy({ cluster, sessionAffinity: { cookie: 'mcg' } });
      const second = createProxy({ cluster, sessionAffinity: 'mcp' });
      await flush();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ code: 'MCGRAVITY_EPHEMERAL_SECRET' });
      expect(warnings[0]?.message).toMatch(/valid in this process only.*same affinitySecret/s);
      await Promise.all(
        [withSecret, byAddress, first, second].map((proxy) => proxy.close({ timeoutMs: 10 })),
      );
    } finally {
      process.off('warning', listen);
    }
  });

  it('refuses a secret shorter than 16 characters, naming the option', () => {
    expect(() =>
      createProxy({ cluster: { backends: ['http://127.0.0.1:1'] }, affinitySecret: 'short' }),
    ).toThrow(/affinitySecret must be a string of at least 16 characters/);
  });

  it('sets the affinity cookie with the attributes asked for', async () => {
    const backend = await startUpstream((_req, res) => res.end('ok'));
    const proxy = createProxy({
      cluster: { backends: [backend.url] },
      sessionAffinity: {
        cookie: 'mcg',
        secure: true,
        domain: 'example.com',
        maxAgeMs: '1h',
        sameSite: 'none',
      },
      affinitySecret: 'a secret for the cookie test',
    });
    const port = ((await proxy.listen(0)).address() as AddressInfo).port;
    try {
      const response = await request(`http://127.0.0.1:${port}/`);
      await response.body.dump();
      expect(String(response.headers['set-cookie'])).toMatch(
        /^mcg=[\w-]{16}; Path=\/; HttpOnly; SameSite=None; Secure; Domain=example\.com; Max-Age=3600$/,
      );
    } finally {
      await proxy.close({ timeoutMs: 100 });
      await backend.close();
    }
  });

  it.each([
    [{ cookie: 'mcg', sameSite: 'none' }, /'none' needs secure: true/],
    [{ cookie: 'bad name' }, /must be a cookie name/],
    [{ cookie: 'mcg', domain: 'a; b' }, /domain must be a string without spaces or semicolons/],
    [{ cookie: 'mcg', maxAge: 5 }, /unknown option "maxAge"/],
  ])('refuses cookie affinity %j', (sessionAffinity, message) => {
    expect(() =>
      createProxy({
        cluster: { backends: ['http://127.0.0.1:1'] },
        sessionAffinity: sessionAffinity as never,
      }),
    ).toThrow(message);
  });
});
