/**
 * mcgravity's diagnostics channels as OpenTelemetry spans and metrics: one server span per proxied
 * request (with the endpoint that answered and the status), and a histogram of attempt durations
 * per endpoint. Only `@opentelemetry/api` is needed in your code; the SDK set up here (an in-memory
 * exporter, to print what was recorded) stands for whatever your service already configures.
 */
import diagnostics from 'node:diagnostics_channel';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics, type Span, SpanKind, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { AttemptEndMessage, ProxyRequestEndMessage, ProxyRequestStartMessage } from 'mcgravity';
import { createProxy } from 'mcgravity';

// --- The SDK your service would set up once (here: in memory, to print the result).
const spans = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

// --- The instrumentation: a few lines over mcgravity's channels, with @opentelemetry/api only.
const tracer = trace.getTracer('mcgravity-example');
const attemptDuration = metrics.getMeter('mcgravity-example').createHistogram('mcgravity.attempt.duration', {
  unit: 'ms',
  description: 'Time from a try to its answer head or failure',
});
const open = new WeakMap<IncomingMessage, Span>();
diagnostics.subscribe('mcgravity:proxy:request:start', (message) => {
  const { req, requestId } = message as ProxyRequestStartMessage;
  const span = tracer.startSpan(`${req.method} proxy`, {
    kind: SpanKind.SERVER,
    attributes: {
      'http.request.method': req.method ?? 'GET',
      'url.path': req.url ?? '/',
      ...(requestId ? { 'mcgravity.request_id': requestId } : {}),
    },
  });
  open.set(req, span);
});
diagnostics.subscribe('mcgravity:proxy:request:end', (message) => {
  const { req, statusCode, endpoint } = message as ProxyRequestEndMessage;
  const span = open.get(req);
  span?.setAttributes({
    'http.response.status_code': statusCode,
    ...(endpoint ? { 'mcgravity.endpoint': endpoint } : {}),
  });
  span?.end();
});
diagnostics.subscribe('mcgravity:attempt:end', (message) => {
  const { cluster, endpoint, durationMs, statusCode } = message as AttemptEndMessage;
  attemptDuration.record(durationMs, {
    cluster,
    endpoint,
    outcome: statusCode === undefined ? 'error' : String(statusCode),
  });
});

// --- A proxy in front of two backends, and a few requests through it.
const backends = await Promise.all(
  ['blue', 'green'].map(async (name) => {
    const server = http.createServer((_req, res) => res.end(name));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }),
);
const proxy = createProxy({
  cluster: {
    backends: backends.map((b, i) => ({ url: b.url, id: ['blue', 'green'][i] as string })),
    balancer: 'round-robin',
  },
});
const port = ((await proxy.listen(0)).address() as AddressInfo).port;
for (let i = 0; i < 4; i++) await (await fetch(`http://127.0.0.1:${port}/orders/${i}`)).text();

for (const span of spans.getFinishedSpans()) {
  console.log(
    `span ${span.name} ${span.attributes['url.path']} -> ${span.attributes['http.response.status_code']} from ${span.attributes['mcgravity.endpoint']}`,
  );
}
await reader.forceFlush();
const histogram = metricExporter
  .getMetrics()
  .flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
  .find((metric) => metric.descriptor.name === 'mcgravity.attempt.duration');
for (const point of histogram?.dataPoints ?? []) {
  console.log(
    `histogram mcgravity.attempt.duration endpoint=${point.attributes.endpoint} count=${(point.value as { count: number }).count}`,
  );
}

await proxy.close({ timeoutMs: 500 });
await reader.shutdown();
for (const backend of backends) backend.server.close();
