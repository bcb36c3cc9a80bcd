/**
 * A circuit breaker guarding an outbound fetch. A local service fails for a while; the breaker
 * opens after three failures and refuses calls at once (the service gets no traffic while it
 * recovers), lets one probe through after `openMs`, and closes when the probe succeeds.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CircuitBreaker, isMcgravityError } from 'mcgravity';

let healthy = false;
let served = 0;
const service = http.createServer((_req, res) => {
  served++;
  res.writeHead(healthy ? 200 : 503).end(healthy ? 'fresh data' : 'overloaded');
});
await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(service.address() as AddressInfo).port}/data`;

const breaker = new CircuitBreaker({
  failureThreshold: 3,
  openMs: 200,
  // A 5xx answer is a failure too, not only a thrown error.
  isFailure: (outcome) => 'error' in outcome || (outcome.value as Response).status >= 500,
});
breaker.on('circuit:state', (to, from) => console.log(`  [breaker] ${from} -> ${to}`));

async function call(label: string): Promise<void> {
  try {
    const response = await breaker.execute((signal) => fetch(url, { signal }));
    console.log(`${label}: ${response.status} ${await response.text()}`);
  } catch (error) {
    if (isMcgravityError(error, 'ECIRCUITOPEN'))
      console.log(`${label}: refused by the breaker (${error.code})`);
    else throw error;
  }
}

for (let i = 1; i <= 5; i++) await call(`call ${i}`);
console.log(`the service saw ${served} requests for 5 calls`);

healthy = true;
await new Promise((resolve) => setTimeout(resolve, 250)); // openMs passes
await call('probe');
await call('after');
console.log(`state: ${breaker.state}; stats: ${JSON.stringify(breaker.stats())}`);
service.close();
