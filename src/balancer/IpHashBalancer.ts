/**
 * IP hash: consistent hashing keyed by the client address, so one client keeps reaching the same
 * endpoint while the set is stable, and only about 1/n of clients move when it changes. Unlike
 * nginx's ip_hash (which hashes only the first three octets of an IPv4 address) the whole address is
 * hashed; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as Node reports IPv4 clients on a dual-stack
 * socket) hashes as its IPv4 form, so both spellings of one client agree.
 *
 * Pass the address as the pick key. Complexity and options as ConsistentHashBalancer.ts.
 */
import type { Endpoint } from '../core/endpoint.js';
import { murmur3Bytes, murmur3String } from '../core/hash.js';
import { ConsistentHashBalancer, type ConsistentHashOptions } from './ConsistentHashBalancer.js';

/** Options of {@link IpHashBalancer}. */
export type IpHashOptions = ConsistentHashOptions;

const MAPPED_PREFIX = '::ffff:';

/** Consistent hash on the client address. */
export class IpHashBalancer<E extends Endpoint = Endpoint> extends ConsistentHashBalancer<E> {
  override readonly name: string = 'ip-hash';

  constructor(options: IpHashOptions = {}) {
    super(options, 'ip-hash balancer');
  }

  protected override hash(key: string | Uint8Array): number {
    if (typeof key !== 'string') return murmur3Bytes(key) | 0;
    const mapped = key.length > MAPPED_PREFIX.length && key.startsWith(MAPPED_PREFIX) && key.includes('.');
    return murmur3String(key, 0, mapped ? MAPPED_PREFIX.length : 0) | 0;
  }
}
