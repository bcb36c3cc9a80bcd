import { describe, expectTypeOf, it } from 'vitest';
import type { ClusterOptions } from '../../src/cluster/Cluster.js';
import type { Duration } from '../../src/core/duration.js';

describe('Duration types', () => {
  it('accept what parseDuration accepts, and refuse prose in the editor', () => {
    expectTypeOf<'250ms'>().toMatchTypeOf<Duration>();
    expectTypeOf<'10s'>().toMatchTypeOf<Duration>();
    expectTypeOf<'1m30s'>().toMatchTypeOf<Duration>();
    expectTypeOf<'1h30m15s'>().toMatchTypeOf<Duration>();
    expectTypeOf<'500'>().toMatchTypeOf<Duration>();
    expectTypeOf<1500>().toMatchTypeOf<Duration>();
    expectTypeOf<'1 minute'>().not.toMatchTypeOf<Duration>();
    expectTypeOf<'10sec'>().not.toMatchTypeOf<Duration>();
    expectTypeOf<'ten seconds'>().not.toMatchTypeOf<Duration>();
    expectTypeOf<{ slowStartMs: '30s' }>().toMatchTypeOf<Pick<ClusterOptions, 'slowStartMs'>>();
    expectTypeOf<{ slowStartMs: 'half a minute' }>().not.toMatchTypeOf<Pick<ClusterOptions, 'slowStartMs'>>();
  });
});
