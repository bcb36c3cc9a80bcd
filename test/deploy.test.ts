/**
 * The deployment files say what the command does: the Kubernetes manifest's proxy.yaml is a valid
 * configuration, its probes and ports are the admin listener's, its grace period covers the drain,
 * and the Dockerfile runs the package's own binary as a non-root user with a health check on the
 * admin port. (No image is built here: the test machines have no container daemon.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../src/cli/config/load.js';
import { parseDuration } from '../src/core/duration.js';
import { root } from './helpers/cli.js';

interface Container {
  args: string[];
  env: { name: string }[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  lifecycle: { preStop: { exec: { command: string[] } } };
  securityContext: { readOnlyRootFilesystem: boolean };
}

describe('deployment files', () => {
  const manifests = parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes.yaml'), 'utf8')).map(
    (doc) => doc.toJS() as { kind: string; data?: Record<string, string>; spec?: Record<string, unknown> },
  );
  const configMap = manifests.find((m) => m.kind === 'ConfigMap');
  const config = parseConfig(configMap?.data?.['proxy.yaml'] as string, 'proxy.yaml');
  const deployment = manifests.find((m) => m.kind === 'Deployment')?.spec as {
    template: {
      spec: {
        terminationGracePeriodSeconds: number;
        securityContext: { runAsNonRoot: boolean };
        containers: Container[];
      };
    };
  };
  const pod = deployment.template.spec;
  const container = pod.containers[0] as Container;

  it('has a valid proxy.yaml whose admin listener the probes reach', () => {
    expect(config.global.metrics_address).toBe('0.0.0.0');
    const admin = container.ports.find((p) => p.name === 'admin');
    expect(admin?.containerPort).toBe(config.global.metrics_port);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'admin' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port: 'admin' });
    const proxy = container.ports.find((p) => p.name === 'proxy');
    expect(config.listeners[0]?.address).toBe(`0.0.0.0:${proxy?.containerPort}`);
  });

  it('gives the secrets the names the configuration reads, and time to drain', () => {
    const env = container.env.map((e) => e.name);
    expect(env).toContain(config.global.admin_token_env);
    expect(env).toContain('MCGRAVITY_AFFINITY_SECRET');
    const preStop = Number(container.lifecycle.preStop.exec.command[1]);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      parseDuration(config.global.shutdown_timeout) + preStop * 1000,
    );
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('has a Dockerfile that runs the package binary as a non-root user, with a health check', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      bin: { mcgravity: string };
    };
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain(`ENTRYPOINT ["node", "/app/${pkg.bin.mcgravity.replace(/^\.\//, '')}"]`);
    const example = parseConfig(readFileSync(join(root, 'examples/proxy.yaml'), 'utf8'), 'proxy.yaml');
    expect(dockerfile).toContain(`fetch('http://127.0.0.1:${example.global.metrics_port}/health')`);
    expect(dockerfile).toMatch(/^COPY examples\/proxy\.yaml \/etc\/mcgravity\/proxy\.yaml$/m);
    expect(dockerfile).toMatch(/MCGRAVITY_CONFIG=\/etc\/mcgravity\/proxy\.yaml/);
  });
});
