import { describe, expect, it } from 'vitest';
import { describeFailure } from '../../src/health/checks.js';
import { grpcCheck } from '../../src/health/grpcCheck.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startReplica } from '../helpers/grpc.js';
import { closedPort } from '../helpers/upstreams.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

/** The check's verdict on `url`: 'healthy', or the reason a monitor would report. */
async function verdict(url: string, service?: string): Promise<string> {
  const check = grpcCheck(service === undefined ? {} : { service });
  try {
    await check({ id: 'x', url }, AbortSignal.timeout(2000));
    return 'healthy';
  } catch (error) {
    return describeFailure(error);
  }
}

describe('grpcCheck', () => {
  it('passes on SERVING, for the server and for a service, and fails on what else the service says', async () => {
    const replica = await startReplica('a');
    defer(() => replica.stop());
    expect(await verdict(replica.url)).toBe('healthy');
    expect(await verdict(replica.url, 'demo.Echo')).toBe('healthy');
    replica.health.setStatus('demo.Echo', 'NOT_SERVING');
    expect(await verdict(replica.url, 'demo.Echo')).toBe('NOT_SERVING');
    expect(await verdict(replica.url, 'no.Such')).toMatch(/^grpc-status 5/); // NOT_FOUND
  });

  it('reports a refused connection as a connect failure', async () => {
    expect(await verdict(`http://127.0.0.1:${await closedPort()}`)).toBe('connect-failure');
  });

  it('refuses options it does not know', () => {
    expect(() => grpcCheck({ service: 'x', path: '/' } as never)).toThrow(/path/);
    expect(() => grpcCheck({ service: 5 } as never)).toThrow(/service must be a string/);
  });
});
