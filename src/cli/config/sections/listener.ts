/**
 * A listener in proxy.yaml: its address and protocol, the cluster or routes it serves, TLS files,
 * timeouts and limits.
 */
import { z } from 'zod';
import { sessionAffinity } from './cluster.js';
import { duration, headerMatch, headerName, size } from './values.js';

const routeMatch = z.strictObject({
  path_prefix: z
    .string()
    .startsWith('/')
    .optional()
    .meta({ description: 'Path segment prefix (`/api` matches `/api/x`).' }),
  host: z.string().optional().meta({ description: 'Host, or `*.example.com`.' }),
  method: z.union([z.string(), z.array(z.string())]).optional(),
  headers: headerMatch.optional(),
  mcp_method: z
    .string()
    .optional()
    .meta({ description: 'MCP method (`tools/call`…), from the `Mcp-Method` header.' }),
  mcp_name: z
    .string()
    .optional()
    .meta({ description: 'MCP tool, prompt or resource, from the `Mcp-Name` header.' }),
});

const route = z.strictObject({
  name: z.string().min(1).optional(),
  match: routeMatch.prefault({}),
  cluster: z.string().min(1).meta({ description: 'Cluster name.' }),
  strip_prefix: z
    .boolean()
    .default(false)
    .meta({ description: 'Remove `match.path_prefix` from the forwarded path.' }),
});

const listenerTimeouts = z.strictObject({
  first_byte: duration('Time for a backend’s response headers, per attempt; 0 for none.').default('30s'),
  idle: duration('Longest silence on a body before both sides are cut; 0 for none.').default('60s'),
  client_headers: duration('Time a client has to send its request headers.').default('10s'),
  tunnel_idle: duration('Longest silence on a WebSocket; 0 for none.').default(0),
});

export const listener = z
  .strictObject({
    name: z.string().min(1),
    address: z
      .string()
      .regex(/^(?:\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/, {
        error: 'expected host:port, such as "0.0.0.0:8080"',
      })
      .meta({ description: '`host:port` to listen on (`[::]:8080` for IPv6).' }),
    protocol: z.enum(['http', 'https', 'h2', 'grpc', 'tcp']).default('http').meta({
      description:
        '`http` (HTTP/1.1), `https` (HTTP/1.1 over TLS, needs `ssl`), `h2` or `grpc` (HTTP/2: with `ssl` by ALPN beside HTTP/1.1, without it cleartext h2c), or `tcp` (connections relayed to a `tcp` cluster).',
    }),
    cluster: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'The cluster for every request (or use `routes`).' }),
    routes: z
      .array(route)
      .optional()
      .meta({ description: 'First match wins; a request matching none gets 404.' }),
    ssl: z
      .strictObject({
        enabled: z.boolean().default(true),
        cert_file: z.string().min(1).meta({ description: 'PEM certificate chain; re-read on SIGHUP.' }),
        key_file: z.string().min(1).meta({ description: 'PEM private key; re-read on SIGHUP.' }),
      })
      .optional()
      .meta({ description: 'TLS: with `enabled`, the listener speaks HTTPS.' }),
    session_affinity: sessionAffinity.optional(),
    http2: z
      .strictObject({
        max_concurrent_streams: z
          .number()
          .int()
          .min(1)
          .default(128)
          .meta({ description: 'Streams a client may open at once on one connection.' }),
        max_header_list_size: size(
          'Largest request header list, as HTTP/2 counts it; larger gets 431.',
        ).default('16KB'),
      })
      .prefault({})
      .meta({ description: 'HTTP/2 limits of an `h2` or `grpc` listener.' }),
    tcp: z
      .strictObject({
        connect_timeout: duration('Time to connect to a backend before trying another.').default('5s'),
        idle_timeout: duration(
          'A connection with no byte either way for this long is closed; 0 for never.',
        ).default('10m'),
        max_connections: z
          .number()
          .int()
          .min(1)
          .default(10_000)
          .meta({ description: 'Client connections at once; more are refused.' }),
        proxy_protocol: z
          .union([z.enum(['v1', 'v2']), z.literal(false)])
          .default(false)
          .meta({
            description: 'Send a PROXY protocol header to backends so that they see the client’s address.',
          }),
      })
      .prefault({})
      .meta({ description: 'Settings of a `tcp` listener.' }),
    timeouts: listenerTimeouts.prefault({}),
    max_body_size: size('Largest request body; larger gets 413.').default('10MB'),
    request_id: z
      .union([headerName, z.literal(false)])
      .default('x-request-id')
      .meta({ description: 'Header carrying the request id, or `false`.' }),
    rewrite_host: z
      .boolean()
      .default(false)
      .meta({ description: 'Send the backend’s host as `Host` instead of the client’s.' }),
    trust_proxy: z
      .union([z.boolean(), z.number().int().min(0), z.array(z.string())])
      .optional()
      .meta({ description: 'Whose `X-Forwarded-*` to believe (default: `global.trust_proxy`).' }),
  })
  .meta({ description: 'A port the proxy serves.' });
