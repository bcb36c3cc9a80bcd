/**
 * Which of a cluster's endpoints may take traffic now, and with what weight. It turns every signal
 * about an endpoint into the set the balancer picks from:
 *
 * - eligible: healthy by active checks, not ejected by outlier detection, its circuit not open, not
 *   cooling down after a `Retry-After`, and not draining;
 * - panic (Envoy's): when fewer than `panicThreshold` percent of the endpoints that are not draining
 *   are eligible, the balancer gets all of them instead. With most of a cluster marked down, the
 *   likelier story is a broken health signal, and sending everything to the few survivors would take
 *   them down too. An endpoint whose circuit is open counts as ejected here, and in panic its
 *   breaker does not keep it out (so one that comes back serves at once);
 * - slow start: an endpoint that becomes eligible again ramps its weight from 10 % over
 *   `slowStartMs` (Envoy's slow start), so a cold backend is not flooded.
 *
 * The balancer receives the chosen set and the whole membership (`update(chosen, members)`), so
 * health-measuring wrappers (zone-aware, priority tiers) see how much of each group is left.
 */
import type { EventEmitter } from 'eventemitter3';
import type { Balancer } from '../balancer/Balancer.js';
import type { Clock } from '../core/clock.js';
import type { OutlierDetector } from '../health/OutlierDetector.js';
import type { ManagedEndpoint } from './ManagedEndpoint.js';
import type { ClusterEvents } from './options.js';

const SLOW_START_MIN = 0.1;

/** Longest cool-down a `Retry-After` can impose on an endpoint. */
export const MAX_COOLDOWN_MS = 30_000;

/** Options of {@link Eligibility}. */
export interface EligibilityOptions {
  readonly balancer: Balancer<ManagedEndpoint>;
  readonly slowStartMs: number;
  readonly panicThreshold: number;
  readonly clock: Clock;
  readonly outliers: OutlierDetector | undefined;
  /** The cluster, whose events announce panic, membership and circuit changes. */
  readonly events: EventEmitter<ClusterEvents>;
}

/** The eligible set of one cluster; see the module comment. */
export class Eligibility {
  readonly #balancer: Balancer<ManagedEndpoint>;
  readonly #slowStartMs: number;
  readonly #panicThreshold: number;
  readonly #clock: Clock;
  readonly #outliers: OutlierDetector | undefined;
  readonly #events: EventEmitter<ClusterEvents>;
  readonly #byId = new Map<string, ManagedEndpoint>();
  readonly #timers = new Set<unknown>();
  #list: ManagedEndpoint[] = [];
  #eligible = new Set<string>();
  #panic = false;
  #slowStartTimer: unknown;
  #closed = false;

  constructor(options: EligibilityOptions) {
    this.#balancer = options.balancer;
    this.#slowStartMs = options.slowStartMs;
    this.#panicThreshold = options.panicThreshold;
    this.#clock = options.clock;
    this.#outliers = options.outliers;
    this.#events = options.events;
  }

  /** Every endpoint, eligible or not, in the order added. */
  get list(): readonly ManagedEndpoint[] {
    return this.#list;
  }

  /** True while panic mode balances across every endpoint. */
  get panic(): boolean {
    return this.#panic;
  }

  /** How many endpoints the balancer picks from now. */
  get size(): number {
    return this.#eligible.size;
  }

  get(id: string): ManagedEndpoint | undefined {
    return this.#byId.get(id);
  }

  has(id: string): boolean {
    return this.#eligible.has(id);
  }

  /** True when an eligible endpoint is not in `tried`. */
  untriedLeft(tried: ReadonlySet<string>): boolean {
    for (const id of this.#eligible) if (!tried.has(id)) return true;
    return false;
  }

  /** Adds an endpoint (ramping up from now when `slowStart`); call {@link Eligibility.rebuild} after. */
  add(endpoint: ManagedEndpoint, slowStart: boolean): void {
    if (slowStart) endpoint.slowStartSince = this.#clock.now();
    this.#byId.set(endpoint.id, endpoint);
    this.#list = [...this.#list, endpoint];
    this.#watchBreaker(endpoint);
  }

  /** Forgets an endpoint and rebuilds. */
  remove(endpoint: ManagedEndpoint): void {
    this.#byId.delete(endpoint.id);
    this.#list = this.#list.filter((e) => e !== endpoint);
    this.rebuild();
  }

  /** Applies a state change to a known endpoint, rebuilds the eligible set, then announces it. */
  mark(id: string, apply: (endpoint: ManagedEndpoint) => unknown, announce: () => void): void {
    const endpoint = this.#byId.get(id);
    if (endpoint === undefined) return;
    apply(endpoint);
    this.rebuild();
    announce();
  }

  /** Takes an endpoint out of rotation for `ms` (bounded by {@link MAX_COOLDOWN_MS}). */
  coolDown(endpoint: ManagedEndpoint, ms: number): void {
    const until = this.#clock.now() + Math.min(ms, MAX_COOLDOWN_MS);
    if (endpoint.coolingUntil !== undefined && endpoint.coolingUntil >= until) return;
    endpoint.coolingUntil = until;
    this.rebuild();
    this.#later(() => this.rebuild(), until - this.#clock.now());
  }

  /** Runs `callback` after `ms` on the cluster's clock, unless closed first. */
  #later(callback: () => void, ms: number): void {
    const timer = this.#clock.setTimeout(() => {
      this.#timers.delete(timer);
      callback();
    }, ms);
    this.#timers.add(timer);
  }

  /** Recomputes the eligible set, panic mode and slow-start weights, and hands them to the balancer. */
  rebuild(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    const members: ManagedEndpoint[] = [];
    const eligible: ManagedEndpoint[] = [];
    let ramping = false;
    for (const endpoint of this.#list) {
      if (endpoint.draining) continue;
      members.push(endpoint);
      if (endpoint.coolingUntil !== undefined && endpoint.coolingUntil <= now)
        endpoint.coolingUntil = undefined;
      const circuitAdmits = endpoint.circuitAdmits;
      this.#outliers?.markUnavailable(endpoint.id, !circuitAdmits);
      if (endpoint.healthy && !endpoint.ejected && circuitAdmits && endpoint.coolingUntil === undefined) {
        if (!this.#eligible.has(endpoint.id) && this.#slowStartMs > 0 && this.#eligible.size > 0) {
          endpoint.slowStartSince ??= now;
        }
        eligible.push(endpoint);
      } else {
        endpoint.slowStartSince = undefined;
      }
      let factor = 1;
      if (endpoint.slowStartSince !== undefined) {
        const elapsed = now - endpoint.slowStartSince;
        if (elapsed >= this.#slowStartMs) endpoint.slowStartSince = undefined;
        else {
          factor = Math.max(SLOW_START_MIN, elapsed / this.#slowStartMs);
          ramping = true;
        }
      }
      endpoint.setEffectiveWeight(endpoint.configuredWeight * factor);
    }
    const panic =
      this.#panicThreshold > 0 &&
      members.length > 0 &&
      eligible.length * 100 < this.#panicThreshold * members.length;
    if (panic !== this.#panic) {
      this.#panic = panic;
      this.#events.emit('panic', { active: panic, eligible: eligible.length, total: members.length });
    }
    const chosen = panic ? members : eligible;
    this.#balancer.update(chosen, members);
    const before = this.#eligible;
    const after = new Set<string>();
    for (const endpoint of chosen) after.add(endpoint.id);
    this.#eligible = after;
    let changed = before.size !== after.size;
    if (!changed) for (const id of before) if (!after.has(id)) changed = true;
    if (changed) this.#events.emit('membership', { eligible: after.size, total: members.length });
    this.#clock.clearTimeout(this.#slowStartTimer);
    this.#slowStartTimer = ramping
      ? this.#clock.setTimeout(() => this.rebuild(), Math.max(10, this.#slowStartMs / 20))
      : undefined;
  }

  /** Stops every timer; the set stays as it is. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) this.#clock.clearTimeout(timer);
    this.#timers.clear();
    this.#clock.clearTimeout(this.#slowStartTimer);
  }

  #watchBreaker(endpoint: ManagedEndpoint): void {
    const breaker = endpoint.breaker;
    if (breaker === undefined) return;
    const id = endpoint.id;
    breaker.on('circuit:open', ({ openMs }) => {
      this.rebuild();
      this.#events.emit('circuit:open', { id });
      // Open to half-open happens on a read after openMs: read it then, so the endpoint returns.
      this.#later(() => this.rebuild(), openMs);
    });
    breaker.on('circuit:half-open', () => this.#events.emit('circuit:half-open', { id }));
    breaker.on('circuit:close', () => {
      this.rebuild();
      this.#events.emit('circuit:close', { id });
    });
  }
}
