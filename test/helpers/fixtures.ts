import { type Cluster, type ClusterOptions, createCluster } from '../../src/cluster/Cluster.js';
import { startUpstream, type Upstream } from './upstreams.js';

/**
 * Loopback upstreams and clusters that the test's `defer` (from cleanupAfterEach) stops after each
 * test: `upstream(handler)` starts a server, `cluster(options)` creates a cluster closed within
 * `closeTimeoutMs`.
 */
export function loopbackFixtures(defer: (stop: () => Promise<unknown>) => void, closeTimeoutMs = 1000) {
  return {
    async upstream(handler: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
      const server = await startUpstream(handler);
      defer(() => server.close());
      return server;
    },
    cluster(options: ClusterOptions): Cluster {
      const made = createCluster(options);
      defer(() => made.close({ timeoutMs: closeTimeoutMs }));
      return made;
    },
  };
}
