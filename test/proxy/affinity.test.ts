import { describe, expect, it } from 'vitest';
import { createProxy } from '../../src/proxy/createProxy.js';
import { flush } from '../helpers/async.js';

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
});
