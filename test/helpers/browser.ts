/**
 * A real browser for tests of the status page: Debian's chromium driven by playwright-core (which
 * downloads nothing). Outside CI a machine without chromium skips those tests with a message; under
 * CI=true they must run (.ci/run installs chromium).
 */
import { spawnSync } from 'node:child_process';
import { type Browser, chromium } from 'playwright-core';
import { skipReason } from './requirement.js';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The browser's executable, if one is installed. */
export const chromiumPath = CANDIDATES.find((path) => spawnSync(path, ['--version']).status === 0);

/** Why browser tests are skipped, or undefined when they run. */
export function browserSkipReason(): string | undefined {
  return skipReason(chromiumPath !== undefined, 'chromium', 'browser', 'chromium');
}

/** Launches the browser headless. */
export function launchBrowser(): Promise<Browser> {
  // As root (in CI containers) chromium refuses to start with its sandbox.
  return chromium.launch({ executablePath: chromiumPath as string, args: ['--no-sandbox'] });
}
