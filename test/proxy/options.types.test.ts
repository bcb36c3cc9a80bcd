import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expectTypeOf, it } from 'vitest';
import type { Cluster } from '../../src/cluster/Cluster.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import type { ErrorCode } from '../../src/core/errors.js';
import type {
  ProxyErrorInfo,
  ProxyOptions,
  UpstreamRequest,
  UpstreamResponse,
} from '../../src/proxy/createProxy.js';

describe('ProxyOptions types', () => {
  it('types the hooks as their docs say', () => {
    expectTypeOf<NonNullable<ProxyOptions['onRequest']>>().parameters.toEqualTypeOf<
      [IncomingMessage, UpstreamRequest]
    >();
    expectTypeOf<UpstreamRequest>().toEqualTypeOf<{
      method: string;
      path: string;
      headers: Record<string, string | string[]>;
      readonly cluster: Cluster;
    }>();
    expectTypeOf<NonNullable<ProxyOptions['onResponse']>>().parameters.toEqualTypeOf<
      [IncomingMessage, ServerResponse, UpstreamResponse]
    >();
    expectTypeOf<UpstreamResponse['endpoint']>().toEqualTypeOf<Endpoint>();
    expectTypeOf<ProxyErrorInfo['code']>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<NonNullable<ProxyOptions['pathRewrite']>>().toEqualTypeOf<
      Readonly<Record<string, string>> | ((path: string, req: IncomingMessage) => string)
    >();
    // A hook's return value is ignored: changes are made in place.
    expectTypeOf<ReturnType<NonNullable<ProxyOptions['onError']>>>().toEqualTypeOf<void>();
  });

  it('takes an environment variable as the affinity secret, set or not', () => {
    // `exactOptionalPropertyTypes` would refuse `string | undefined` for a plain optional `string`.
    expectTypeOf<{ affinitySecret: string | undefined }>().toExtend<ProxyOptions>();
  });
});
