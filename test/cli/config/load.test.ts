/**
 * The configuration file: the product description's own proxy.yaml is accepted as written, the
 * published JSON Schema is the schema's and accepts the example, and mistakes are reported where
 * they are.
 */
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configurationText } from '../../../scripts/configuration.js';
import { schemaText } from '../../../scripts/schema.js';
import { ConfigError, loadConfig, parseConfig } from '../../../src/cli/config/load.js';
import { selfSigned, tlsSkipReason } from '../../helpers/tls.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('proxy.yaml', () => {
  const skip = tlsSkipReason();
  it.skipIf(skip !== undefined)(`accepts the maritime file as written ${skip ?? ''}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-maritime-'));
    for (const name of ['claims', 'underwriting', 'financial']) selfSigned(dir, `maritime-${name}`);
    copyFileSync(join(root, 'test/cli/fixtures/maritime.yaml'), join(dir, 'proxy.yaml'));
    const config = loadConfig(join(dir, 'proxy.yaml'));
    expect(Object.keys(config.clusters)).toEqual([
      'claims_processing',
      'underwriting_services',
      'financial_services',
    ]);
    expect(config.clusters.underwriting_services).toMatchObject({
      load_balancing: 'ip_hash',
      session_affinity: true,
    });
    expect(config.clusters.financial_services?.circuit_breaker).toMatchObject({
      failure_threshold: 5,
      recovery_timeout: '30s',
    });
    expect(config.listeners.map((l) => l.ssl?.enabled)).toEqual([true, true, true]);
    expect(config.access_log?.rotation).toEqual({ max_size: '100MB', max_files: 10 });
    expect(config.audit_log).toMatchObject({ compliance_mode: 'maritime_insurance', retention: '7_years' });
  });

  it('documents every key in docs/configuration.md, generated from the schema (npm run schema)', () => {
    const text = configurationText();
    expect(readFileSync(join(root, 'docs/configuration.md'), 'utf8')).toBe(text);
    for (const key of ['metrics_port', 'failure_threshold', 'overflow_action', 'cert_file', 'max_files'])
      expect(text).toContain(`| \`${key}\` |`);
  });

  it('publishes the JSON Schema of the schema, and it accepts the example', () => {
    expect(readFileSync(join(root, 'schema/proxy.schema.json'), 'utf8')).toBe(schemaText());
    const validate = new Ajv2020({ strict: false, allErrors: true }).compile(JSON.parse(schemaText()));
    expect(
      validate(parse(readFileSync(join(root, 'examples/proxy.yaml'), 'utf8'))),
      JSON.stringify(validate.errors),
    ).toBe(true);
    expect(validate({ listeners: [], clusters: {}, global: { log_level: 'loud' } })).toBe(false);
  });

  it('lists every problem of a file at once, each at its line', () => {
    const text = [
      'global:',
      '  metrics_prot: 9090',
      'clusters:',
      '  web:',
      '    load_balancing: round_robbin',
      '    backends: []',
      'listeners:',
      '  - name: a',
      '    address: "8080"',
      '    cluster: web',
    ].join('\n');
    const error = (() => {
      try {
        parseConfig(text, 'proxy.yaml');
      } catch (e) {
        return e;
      }
    })() as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message.split('\n')).toEqual([
      'proxy.yaml:2:3 global.metrics_prot: unknown key "metrics_prot" (did you mean "metrics_port"?)',
      expect.stringMatching(
        /^proxy\.yaml:5:21 clusters\.web\.load_balancing: expected one of .* got "round_robbin" \(did you mean "round_robin"\?\)$/,
      ),
      'proxy.yaml:9:14 listeners[0].address: expected host:port, such as "0.0.0.0:8080", got "8080"',
    ]);
  });

  it('checks what refers to what once the shapes are right', () => {
    const text = `clusters:
  web:
    backends: []
    traffic_split:
      splits: [{ backend_group: canary, percentage: 10 }]
listeners:
  - { name: a, address: "127.0.0.1:0", cluster: web }
  - { name: a, address: "127.0.0.1:0", routes: [{ cluster: web }], cluster: web }
`;
    expect(() => parseConfig(text, 'proxy.yaml')).toThrow(
      [
        'proxy.yaml:3:15 clusters.web.backends: a cluster needs a backend, a discovery source, or allow_empty: true (to add them through the admin API)',
        'proxy.yaml:5:33 clusters.web.traffic_split.splits[0].backend_group: no cluster named "canary" (clusters: web)',
        'proxy.yaml:8:5 listeners[1]: a listener needs either cluster or routes',
        'proxy.yaml:8:13 listeners[1].name: listener "a" is defined twice (also listeners[0])',
      ].join('\n'),
    );
  });

  it('takes backends from discovery, and refuses a port on SRV records', () => {
    const text = (dns: string) => `clusters:
  web:
    discovery:
      dns: ${dns}
listeners:
  - { name: a, address: "127.0.0.1:0", cluster: web }
`;
    const parsed = parseConfig(text('{ name: api.internal, port: 8080 }'), 'proxy.yaml');
    expect(parsed.clusters.web?.discovery).toEqual({
      dns: {
        name: 'api.internal',
        type: 'A',
        port: 8080,
        scheme: 'http',
        target_type: 'A',
        min_ttl: '5s',
        max_ttl: '5m',
        timeout: '2s',
      },
    });
    expect(() =>
      parseConfig(text('{ name: _http._tcp.api.internal, type: SRV, port: 80 }'), 'proxy.yaml'),
    ).toThrow(
      'proxy.yaml:4:62 clusters.web.discovery.dns.port: SRV records carry their own ports: leave port out',
    );
    expect(() => parseConfig(text('{ name: api.internal, type: MX }'), 'proxy.yaml')).toThrow(
      /clusters\.web\.discovery\.dns\.type/,
    );
  });
});
