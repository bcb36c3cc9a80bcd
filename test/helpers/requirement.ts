/**
 * Tests that need a program of the machine (redis-server, openssl, chromium): outside CI a machine
 * without it skips them with a message; under CI=true they must run, so a missing one fails them.
 */

/** Why the `tests` tests are skipped, or undefined when `program` is here and they run. */
export function skipReason(
  available: boolean,
  program: string,
  tests: string,
  pkg: string,
): string | undefined {
  if (available) return undefined;
  if (process.env.CI === 'true')
    throw new Error(`${program} is not installed, and CI=true requires the ${tests} tests to run`);
  return `${program} is not installed: ${tests} tests skipped (apt-get install ${pkg}, or run .ci/run)`;
}
