/**
 * Smooth weighted round robin, exactly as nginx schedules its upstreams
 * (ngx_http_upstream_get_peer, 2012): every pick adds each endpoint's weight to its current weight,
 * takes the endpoint with the highest current weight (the first on a tie) and subtracts the total
 * weight from it. Within every cycle of `sum(weights)` picks each endpoint is picked exactly `weight`
 * times, interleaved rather than in runs: weights 5, 1, 1 give `a a b a c a a`.
 *
 * nginx runs that loop per pick, which is O(n). Here `update()` runs it once for a whole cycle and
 * keeps the sequence in a table, so `pick()` is O(1) and allocation-free:
 * - equal weights: the cycle is plain rotation, no table needed;
 * - integer weights whose cycle (after dividing by their GCD) has at most 65,536 picks and costs at
 *   most 2^22 steps to build: the exact nginx sequence, O(1) per pick;
 * - anything else (fractional weights, huge cycles): an earliest-deadline-first schedule, O(log n) per
 *   pick, where the k-th pick of an endpoint of weight w is due at (k - 1/2) / w. It keeps the same
 *   guarantee, each endpoint exactly its weight per cycle for integer weights, with a slightly
 *   different interleaving (Envoy schedules weighted hosts with EDF too: edf_scheduler.h).
 *
 * `exclude` (endpoints already tried) is honoured without costing the others their turns: the chosen
 * endpoint swaps places with the excluded one in the table, or is taken out of deadline order.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { Balancer, PickContext } from './Balancer.js';
import { integerWeightDivisor, takeActive, uniformWeights } from './membership.js';

const MAX_TABLE = 1 << 16;
const MAX_BUILD_STEPS = 1 << 22;

type Mode = 'rotation' | 'table' | 'deadline';

/** Smooth weighted round robin (nginx). */
export class WeightedRoundRobinBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name: string = 'weighted-round-robin';
  #endpoints: E[] = [];
  #mode: Mode = 'rotation';
  // 'table': the picks of one cycle, as indexes into #endpoints.
  #table = new Uint32Array(0);
  #cursor = 0;
  // 'deadline': a binary min-heap of endpoint indexes ordered by (due, index).
  #heap = new Int32Array(0);
  #position = new Int32Array(0);
  #due = new Float64Array(0);
  #picked = new Float64Array(0);

  update(endpoints: readonly E[]): void {
    const list = takeActive(endpoints, this.name);
    this.#endpoints = list;
    this.#cursor = 0;
    const n = list.length;
    const weights = list.map((endpoint) => endpoint.weight);
    if (uniformWeights(weights)) {
      this.#mode = 'rotation';
      return;
    }
    const divisor = integerWeightDivisor(weights);
    if (divisor !== 0) {
      let cycle = 0;
      for (const endpoint of list) cycle += endpoint.weight / divisor;
      if (cycle <= MAX_TABLE && cycle * n <= MAX_BUILD_STEPS) {
        this.#buildTable(divisor, cycle);
        this.#mode = 'table';
        return;
      }
    }
    this.#buildDeadlines();
    this.#mode = 'deadline';
  }

  pick(ctx?: PickContext): E | undefined {
    const list = this.#endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    const exclude = ctx?.exclude;
    const excluding = exclude !== undefined && exclude.size > 0;
    if (this.#mode === 'deadline')
      return excluding ? this.#pickDeadlineExcluding(exclude) : this.#pickDeadline();
    const length = this.#mode === 'table' ? this.#table.length : n;
    if (excluding) return this.#pickRotationExcluding(exclude, length);
    const cursor = this.#cursor;
    this.#cursor = cursor + 1 === length ? 0 : cursor + 1;
    return list[this.#mode === 'table' ? (this.#table[cursor] as number) : cursor];
  }

  // nginx's loop, run once for a whole cycle of `cycle` picks with weights divided by `divisor`.
  #buildTable(divisor: number, cycle: number): void {
    const list = this.#endpoints;
    const n = list.length;
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) weights[i] = (list[i] as E).weight / divisor;
    const current = new Float64Array(n);
    const table = new Uint32Array(cycle);
    for (let slot = 0; slot < cycle; slot++) {
      let best = 0;
      for (let i = 0; i < n; i++) {
        current[i] = (current[i] as number) + (weights[i] as number);
        if ((current[i] as number) > (current[best] as number)) best = i;
      }
      current[best] = (current[best] as number) - cycle;
      table[slot] = best;
    }
    this.#table = table;
  }

  // Walks the cycle from the cursor to the first endpoint not excluded. In table mode the chosen
  // entry swaps with the one at the cursor, so the excluded endpoint keeps its turn for later.
  #pickRotationExcluding(exclude: ReadonlySet<string>, length: number): E | undefined {
    const list = this.#endpoints;
    const table = this.#mode === 'table' ? this.#table : undefined;
    const cursor = this.#cursor;
    for (let step = 0, slot = cursor; step < length; step++, slot = slot + 1 === length ? 0 : slot + 1) {
      const index = table === undefined ? slot : (table[slot] as number);
      const candidate = list[index] as E;
      if (exclude.has(candidate.id)) continue;
      if (table !== undefined) {
        table[slot] = table[cursor] as number;
        table[cursor] = index;
        this.#cursor = cursor + 1 === length ? 0 : cursor + 1;
      } else {
        this.#cursor = slot + 1 === length ? 0 : slot + 1;
      }
      return candidate;
    }
    return undefined;
  }

  #buildDeadlines(): void {
    const n = this.#endpoints.length;
    this.#heap = new Int32Array(n);
    this.#position = new Int32Array(n);
    this.#due = new Float64Array(n);
    this.#picked = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      this.#due[i] = 0.5 / (this.#endpoints[i] as E).weight;
      this.#heap[i] = i;
      this.#position[i] = i;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  #pickDeadline(): E {
    const index = this.#heap[0] as number;
    this.#advance(index);
    return this.#endpoints[index] as E;
  }

  // Takes the earliest-due endpoint that is not excluded, out of heap order: O(n), retries only.
  #pickDeadlineExcluding(exclude: ReadonlySet<string>): E | undefined {
    const list = this.#endpoints;
    let best = -1;
    for (let i = 0; i < list.length; i++) {
      if (exclude.has((list[i] as E).id)) continue;
      if (best === -1 || this.#before(i, best)) best = i;
    }
    if (best === -1) return undefined;
    this.#advance(best);
    return list[best];
  }

  #advance(index: number): void {
    const picked = (this.#picked[index] as number) + 1;
    this.#picked[index] = picked;
    this.#due[index] = (picked + 0.5) / (this.#endpoints[index] as E).weight;
    this.#siftDown(this.#position[index] as number);
  }

  #before(a: number, b: number): boolean {
    const dueA = this.#due[a] as number;
    const dueB = this.#due[b] as number;
    return dueA < dueB || (dueA === dueB && a < b);
  }

  #siftDown(at: number): void {
    const heap = this.#heap;
    const due = this.#due;
    const position = this.#position;
    const n = heap.length;
    const item = heap[at] as number;
    const itemDue = due[item] as number;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= n) break;
      let childItem = heap[child] as number;
      let childDue = due[childItem] as number;
      if (child + 1 < n) {
        const right = heap[child + 1] as number;
        const rightDue = due[right] as number;
        if (rightDue < childDue || (rightDue === childDue && right < childItem)) {
          child++;
          childItem = right;
          childDue = rightDue;
        }
      }
      if (itemDue < childDue || (itemDue === childDue && item < childItem)) break;
      heap[at] = childItem;
      position[childItem] = at;
      at = child;
    }
    heap[at] = item;
    position[item] = at;
  }
}
