/**
 * The status page in a real browser (chromium): it shows every cluster and endpoint from the admin
 * API, refreshes on its own (the page's clock is faked, so no test waits on real time), draws its
 * charts, and changes an endpoint with the token, under its Content-Security-Policy with no error
 * in the page. With UPDATE_SCREENSHOT=1 it also writes docs/status-page.png.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../src/admin/createAdmin.js';
import { createCluster } from '../../src/cluster/Cluster.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { within } from '../helpers/async.js';
import { browserSkipReason, launchBrowser } from '../helpers/browser.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startUpstream } from '../helpers/upstreams.js';

/** The little of the DOM that functions run in the page use (this project's types have no DOM). */
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  getElementById(id: string): { textContent: string | null } | null;
  querySelector(selector: string): { textContent: string | null } | null;
};

const skip = browserSkipReason();
if (skip !== undefined) console.warn(skip);
const defer = cleanupAfterEach();
const TOKEN = 'status-token-0123456789';

describe.skipIf(skip !== undefined)('status page', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(() => browser?.close());

  async function setup(token?: string) {
    const upstreams = await Promise.all([1, 2, 3].map(() => startUpstream((_req, res) => res.end('ok'))));
    for (const u of upstreams) defer(() => u.close());
    const api = createCluster({
      name: 'api',
      backends: upstreams.slice(0, 2).map((u, i) => ({ url: u.url, id: `api-${i + 1}` })),
      health: false,
    });
    const search = createCluster({
      name: 'search',
      backends: [{ url: (upstreams[2] as { url: string }).url, id: 'search-1' }],
      health: false,
    });
    const proxy = createProxy({
      routes: [{ match: { pathPrefix: '/search' }, cluster: search }, { cluster: api }],
    });
    const proxyServer = await proxy.listen(0, '127.0.0.1');
    defer(async () => {
      await proxy.close({ timeoutMs: 0 });
      await Promise.all([api.close({ timeoutMs: 0 }), search.close({ timeoutMs: 0 })]);
    });
    const admin = http.createServer(
      createAdmin({ clusters: { api, search }, proxy, ...(token === undefined ? {} : { token }) }),
    );
    await new Promise<void>((resolve) => admin.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => admin.close(resolve)));
    const traffic = async (count: number, path = '/x') => {
      const url = `http://127.0.0.1:${(proxyServer.address() as AddressInfo).port}${path}`;
      for (let i = 0; i < count; i++) await (await request(url)).body.dump();
    };
    return { api, traffic, url: `http://127.0.0.1:${(admin.address() as AddressInfo).port}/` };
  }

  async function open(
    url: string,
    cluster = 'api',
    endpoint = 'api-2',
  ): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    defer(() => page.close());
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.clock.install();
    await page.goto(url);
    await page.waitForSelector(`section[data-cluster="${cluster}"] tr[data-endpoint="${endpoint}"]`);
    return { page, errors };
  }

  /** Runs the page's clock past one poll and waits for the page to have redrawn. */
  async function nextPoll(page: Page): Promise<void> {
    const before = await page.evaluate(() => document.body.dataset.updated);
    await page.clock.runFor(2_000);
    await page.waitForFunction((b) => document.body.dataset.updated !== b, before);
  }

  it('shows every cluster and endpoint, refreshes by itself and draws its charts', async () => {
    const { url, traffic } = await setup();
    const { page, errors } = await open(url);
    // The proxy's clusters, in the order of its routes.
    expect(await page.locator('section.cluster h2').allTextContents()).toEqual(['search ', 'api ']);
    const row = page.locator('tr[data-endpoint="api-1"] td');
    expect(await row.nth(1).textContent()).toBe('healthy');
    expect(await row.nth(2).textContent()).toBe('closed');
    // Read-only without a token: no controls, no token field.
    expect(await page.locator('#auth').isHidden()).toBe(true);
    expect(await page.locator('button').count()).toBe(0);

    await traffic(20);
    await traffic(6, '/search');
    await nextPoll(page);
    const requests = await page.locator('section[data-cluster="search"] .figure b').nth(0).textContent();
    expect(requests).toBe('1 / 1');
    const rps = Number(await page.locator('tr[data-endpoint="search-1"] td').nth(5).textContent());
    expect(rps).toBeGreaterThan(0);
    await nextPoll(page);
    const points = await page.locator('section[data-cluster="api"] polyline').first().getAttribute('points');
    expect(points?.split(' ').length).toBe(3); // three polls so far
    expect(errors).toEqual([]);
  });

  it('drains, undrains and reweights an endpoint with the admin token', async () => {
    const { url, api, traffic } = await setup(TOKEN);
    await traffic(10);
    const { page, errors } = await open(url);
    expect(await page.locator('#auth').isVisible()).toBe(true);

    // Without the token the change is refused, and the page says why.
    await page.locator('tr[data-endpoint="api-1"] button', { hasText: 'Drain' }).click();
    await page.waitForFunction(() => document.getElementById('message')?.textContent !== '');
    expect(await page.locator('#message').textContent()).toBe('a valid bearer token is required');
    expect(api.stats().endpoints[0]?.draining).toBe(false);

    // The browser logs the refused request; that one is expected.
    const refused = errors.findIndex((e) => e.includes('401 (Unauthorized)'));
    expect(refused).not.toBe(-1);
    errors.splice(refused, 1);
    await page.locator('#token').fill(TOKEN);
    await page.locator('#token').dispatchEvent('change');
    await page.locator('tr[data-endpoint="api-1"] button', { hasText: 'Drain' }).click();
    await page.waitForSelector('tr[data-endpoint="api-1"] .state-draining');
    expect(api.stats().endpoints[0]?.draining).toBe(true);
    expect(await page.locator('#message').textContent()).toBe('');

    await page.locator('tr[data-endpoint="api-2"] input').fill('5');
    await page.locator('tr[data-endpoint="api-2"] button', { hasText: 'Set weight' }).click();
    await page.waitForFunction(
      () => document.querySelector('tr[data-endpoint="api-2"] td:nth-child(4)')?.textContent === '5',
    );
    expect(api.stats().endpoints[1]?.weight).toBe(5);

    await page.locator('tr[data-endpoint="api-1"] button', { hasText: 'Undrain' }).click();
    await page.waitForSelector('tr[data-endpoint="api-1"] .state-healthy');
    expect(api.stats().endpoints[0]?.draining).toBe(false);
    expect(errors).toEqual([]);

    if (process.env.UPDATE_SCREENSHOT === '1') {
      for (let i = 0; i < 90; i++) {
        await traffic(4 + ((i * 7) % 13));
        await nextPoll(page);
      }
      await page.screenshot({
        path: fileURLToPath(new URL('../../docs/status-page.png', import.meta.url)),
        fullPage: true,
      });
    }
  });

  it('shows three endpoints, a stopped backend as down within a few seconds, and drains it', async () => {
    const upstreams = await Promise.all([1, 2, 3].map(() => startUpstream((_req, res) => res.end('ok'))));
    for (const u of upstreams) defer(() => u.close());
    const web = createCluster({
      name: 'web',
      backends: upstreams.map((u, i) => ({ url: u.url, id: `web-${i + 1}` })),
      health: { path: '/health', intervalMs: 100, timeoutMs: 100, unhealthyThreshold: 1, jitter: 0 },
    });
    defer(() => web.close({ timeoutMs: 0 }));
    const admin = http.createServer(createAdmin({ clusters: { web }, token: TOKEN }));
    await new Promise<void>((resolve) => admin.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => admin.close(resolve)));
    const { page, errors } = await open(
      `http://127.0.0.1:${(admin.address() as AddressInfo).port}/`,
      'web',
      'web-3',
    );
    expect(await page.locator('section[data-cluster="web"] tbody tr').count()).toBe(3);
    expect(await page.locator('section[data-cluster="web"] .state-healthy').count()).toBe(3);

    const started = Date.now();
    await upstreams[2]?.close();
    await within(() => web.stats().endpoints[2]?.healthy === false, 5_000, 'the health check failing');
    await nextPoll(page);
    expect(await page.locator('tr[data-endpoint="web-3"] td').nth(1).textContent()).toBe('down');
    expect(Date.now() - started).toBeLessThan(5_000);

    await page.locator('#token').fill(TOKEN);
    await page.locator('#token').dispatchEvent('change');
    await page.locator('tr[data-endpoint="web-3"] button', { hasText: 'Drain' }).click();
    await page.waitForSelector('tr[data-endpoint="web-3"] .state-draining');
    expect(web.stats().endpoints[2]?.draining).toBe(true);
    expect(errors).toEqual([]);
  });

  it('is served with a Content-Security-Policy that allows only its own files', async () => {
    const { url } = await setup();
    const response = await request(url);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(await response.body.text()).toContain('<script src="status.js" defer></script>');
  });
});
