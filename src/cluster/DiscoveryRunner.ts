/**
 * Keeps a cluster's membership in step with a {@link Discovery} source: each list the source yields
 * is compared with the endpoints it added before, and the difference goes through the cluster's own
 * path (new endpoints are added first, so the set never runs empty in between; gone ones drain,
 * then leave; changed weights are set). Endpoints given in `backends` are never touched.
 *
 * What it refuses: a list with a bad entry, and (unless `allowEmpty`) an empty list. Either way,
 * and when the source reports a failed look-up, the cluster keeps its last good set and a
 * `discovery:error` event says why. A source whose iterator throws is started again after a
 * back-off (1 s doubling to 30 s).
 */
import type { Clock } from '../core/clock.js';
import type { BackendConfig, NormalizedBackend } from '../core/endpoint.js';
import { normalizeBackend } from '../core/endpoint.js';
import type { Discovery, DiscoveryResult } from '../discovery/Discovery.js';

/** Statistics of a cluster's discovery, in {@link ClusterStats}. */
export interface DiscoveryStats {
  /** The source's description, e.g. `dns SRV _http._tcp.api`. */
  readonly source: string;
  /** Answers that changed the membership. */
  readonly updates: number;
  /** Answers refused or failed (the last good set was kept). */
  readonly errors: number;
  /** True while the last answer was refused or failed. */
  readonly stale: boolean;
  /** Why, when `stale`. */
  readonly lastError?: string;
  /** Endpoints the source put in the cluster now (draining ones included until they leave). */
  readonly endpoints: number;
}

/** What the runner needs of its cluster. */
export interface DiscoveryTarget {
  readonly name: string;
  has(id: string): boolean;
  weightOf(id: string): number | undefined;
  add(backend: NormalizedBackend): void;
  remove(id: string, timeoutMs: number): Promise<void>;
  undrain(id: string): void;
  setWeight(id: string, weight: number): void;
  emit(event: 'discovery:update', info: { added: string[]; removed: string[]; reweighted: string[] }): void;
  emit(event: 'discovery:error', info: { error: Error; kept: number }): void;
}

const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 30_000;

/** Runs one source for one cluster; see the module comment. */
export class DiscoveryRunner {
  readonly #source: Discovery;
  readonly #target: DiscoveryTarget;
  readonly #allowEmpty: boolean;
  readonly #drainTimeoutMs: number;
  readonly #clock: Clock;
  /** Ids this source added and has not removed. */
  readonly #owned = new Set<string>();
  /** Ids being drained because the source dropped them. */
  readonly #leaving = new Set<string>();
  #iterator: AsyncIterator<DiscoveryResult> | undefined;
  #restartTimer: unknown;
  #restarts = 0;
  #closed = false;
  #updates = 0;
  #errors = 0;
  #lastError: string | undefined;
  #firstAnswer: () => void = () => {};
  /** Settles at the first good answer (or at close). */
  readonly ready: Promise<void>;

  constructor(
    source: Discovery,
    target: DiscoveryTarget,
    options: { allowEmpty: boolean; drainTimeoutMs: number; clock: Clock },
  ) {
    this.#source = source;
    this.#target = target;
    this.#allowEmpty = options.allowEmpty;
    this.#drainTimeoutMs = options.drainTimeoutMs;
    this.#clock = options.clock;
    this.ready = new Promise((resolve) => {
      this.#firstAnswer = resolve;
    });
  }

  /** Starts reading the source. */
  start(): void {
    if (this.#closed) return;
    let iterator: AsyncIterator<DiscoveryResult>;
    try {
      iterator = this.#source[Symbol.asyncIterator]();
    } catch (error) {
      this.#failed(error);
      return;
    }
    this.#iterator = iterator;
    void this.#read(iterator);
  }

  stats(): DiscoveryStats {
    return {
      source: this.#source.description ?? 'custom',
      updates: this.#updates,
      errors: this.#errors,
      stale: this.#lastError !== undefined,
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
      endpoints: this.#owned.size,
    };
  }

  /** Stops reading: the source's iterator is returned and no restart is pending. Membership stays. */
  close(): void {
    this.#closed = true;
    this.#clock.clearTimeout(this.#restartTimer);
    const iterator = this.#iterator;
    this.#iterator = undefined;
    // Not awaited: an async generator's return() waits for its pending step.
    void iterator?.return?.()?.catch(() => {});
    this.#firstAnswer();
  }

  async #read(iterator: AsyncIterator<DiscoveryResult>): Promise<void> {
    try {
      for (;;) {
        const step = await iterator.next();
        if (this.#closed || this.#iterator !== iterator) return;
        if (step.done === true) {
          this.#failed(new Error('the discovery source ended'));
          return;
        }
        this.#apply(step.value);
      }
    } catch (error) {
      if (!this.#closed && this.#iterator === iterator) this.#failed(error);
    }
  }

  /** The iterator ended or threw: report it, start again after a back-off. */
  #failed(error: unknown): void {
    this.#iterator = undefined;
    this.#refuse(error instanceof Error ? error : new Error(String(error)));
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.#restarts);
    this.#restarts = Math.min(this.#restarts + 1, 10);
    this.#restartTimer = this.#clock.setTimeout(() => this.start(), delay);
  }

  #apply(value: DiscoveryResult): void {
    if (value instanceof Error) {
      this.#refuse(value);
      return;
    }
    if (!Array.isArray(value)) {
      this.#refuse(new TypeError('a discovery source must yield a list of backends or an Error'));
      return;
    }
    const wanted = new Map<string, NormalizedBackend>();
    try {
      value.forEach((backend: string | BackendConfig, i) => {
        const normalized = normalizeBackend(backend, `discovered backend [${i}]`);
        if (wanted.has(normalized.id)) return; // the same address twice (A and SRV overlap): one endpoint
        wanted.set(normalized.id, normalized);
      });
    } catch (error) {
      this.#refuse(error as Error);
      return;
    }
    if (wanted.size === 0 && !this.#allowEmpty) {
      this.#refuse(new Error('the source found no backends (allowEmpty is off)'));
      return;
    }
    this.#restarts = 0;
    this.#lastError = undefined;
    const added: string[] = [];
    const removed: string[] = [];
    const reweighted: string[] = [];
    for (const [id, backend] of wanted) {
      if (this.#leaving.delete(id) && this.#target.has(id)) {
        this.#target.undrain(id); // back before it left: its pending removal is cancelled
        added.push(id);
      } else if (!this.#target.has(id)) {
        this.#target.add(backend);
        this.#owned.add(id);
        added.push(id);
        continue;
      } else if (!this.#owned.has(id)) {
        continue; // given in `backends`: not ours to change
      }
      if (this.#target.weightOf(id) !== backend.weight) {
        this.#target.setWeight(id, backend.weight);
        reweighted.push(id);
      }
    }
    for (const id of this.#owned) {
      if (wanted.has(id) || this.#leaving.has(id)) continue;
      this.#leaving.add(id);
      removed.push(id);
      this.#target.remove(id, this.#drainTimeoutMs).then(
        () => this.#left(id),
        () => this.#left(id),
      );
    }
    if (added.length + removed.length + reweighted.length > 0) {
      this.#updates++;
      this.#target.emit('discovery:update', { added, removed, reweighted });
    }
    this.#firstAnswer();
  }

  #left(id: string): void {
    // Still leaving (not re-added meanwhile) and gone from the cluster: no longer ours.
    if (this.#leaving.delete(id) || !this.#target.has(id)) this.#owned.delete(id);
  }

  #refuse(error: Error): void {
    this.#errors++;
    this.#lastError = error.message;
    this.#target.emit('discovery:error', { error, kept: this.#owned.size - this.#leaving.size });
  }
}
