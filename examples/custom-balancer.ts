/**
 * A custom algorithm: implement `Balancer` and plug it in wherever mcgravity takes one.
 *
 * This one routes by capability. Each backend lists what it can do in `metadata.capabilities`; the
 * pick key names the capability a request needs; among the backends that have it, a built-in
 * least-request balancer chooses. Tables are rebuilt in `update()`, so `pick()` stays cheap.
 */
import { type Balancer, createBalancer, type Endpoint, type PickContext } from 'mcgravity';

export class CapabilityBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name = 'capability';
  #byCapability = new Map<string, Balancer<E>>();
  #any = createBalancer<E>('least-request');

  update(endpoints: readonly E[]): void {
    this.#any.update(endpoints); // also checks ids and weights
    const groups = new Map<string, E[]>();
    for (const endpoint of endpoints) {
      const capabilities = endpoint.metadata?.capabilities;
      if (!Array.isArray(capabilities)) continue;
      for (const capability of capabilities) {
        if (typeof capability !== 'string') continue;
        groups.set(capability, [...(groups.get(capability) ?? []), endpoint]);
      }
    }
    const next = new Map<string, Balancer<E>>();
    for (const [capability, group] of groups) {
      const balancer = this.#byCapability.get(capability) ?? createBalancer<E>('least-request');
      balancer.update(group);
      next.set(capability, balancer);
    }
    this.#byCapability = next;
  }

  pick(ctx?: PickContext): E | undefined {
    const wanted = typeof ctx?.key === 'string' ? ctx.key : undefined;
    if (wanted === undefined) return this.#any.pick(ctx);
    return this.#byCapability.get(wanted)?.pick(ctx);
  }
}

const endpoint = (id: string, capabilities: string[]): Endpoint => ({
  id,
  url: `http://127.0.0.1/${id}`,
  weight: 1,
  inflight: 0,
  metadata: { capabilities },
});

const balancer: Balancer = new CapabilityBalancer();
balancer.update([
  endpoint('search-1', ['search']),
  endpoint('search-2', ['search']),
  endpoint('gpu-1', ['search', 'embeddings']),
]);

const tally = (key: string | undefined, count: number) => {
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const chosen = balancer.pick(key === undefined ? undefined : { key });
    const id = chosen?.id ?? 'none';
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return [...seen]
    .map(([id, n]) => `${id}=${n}`)
    .sort()
    .join(' ');
};

console.log(`embeddings: ${tally('embeddings', 30)}`);
console.log(`search:     ${tally('search', 30).replace(/=\d+/g, '')}`);
console.log(`translate:  ${tally('translate', 3)}`);
console.log(
  `retry:      ${balancer.pick({ key: 'embeddings', exclude: new Set(['gpu-1']) })?.id ?? 'none left'}`,
);
