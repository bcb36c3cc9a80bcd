/**
 * What the primary process and its workers say to each other over the `node:cluster` IPC channel.
 * The primary owns the configuration: a worker starts from the one it is sent, and every change
 * (a reload, an admin change) reaches every worker as a command, answered when applied.
 */
import type { BackendConfig } from '../../core/endpoint.js';
import type { ProxyConfig } from '../config/schema.js';
import type { WorkerSnapshot } from './merge.js';

/** A change every worker applies. */
export type WorkerCommand =
  | { readonly op: 'reload'; readonly config: ProxyConfig; readonly fromFile: boolean }
  | { readonly op: 'add'; readonly cluster: string; readonly backend: BackendConfig }
  | { readonly op: 'setWeight'; readonly cluster: string; readonly id: string; readonly weight: number }
  | { readonly op: 'drain' | 'undrain' | 'remove'; readonly cluster: string; readonly id: string };

/** Primary to worker. */
export type ToWorker =
  | { readonly type: 'start'; readonly config: ProxyConfig }
  | { readonly type: 'command'; readonly id: number; readonly command: WorkerCommand };

/** Worker to primary. */
export type FromWorker =
  | { readonly type: 'waiting' }
  | { readonly type: 'started'; readonly addresses: Record<string, string> }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'snapshot'; readonly snapshot: WorkerSnapshot }
  | {
      readonly type: 'done';
      readonly id: number;
      readonly error?: string;
      /** What the command returned (a reload's summary). */
      readonly result?: unknown;
      readonly snapshot: WorkerSnapshot;
    };

/** True for a message of this protocol (the channel may carry others). */
export function isMessage<T extends { type: string }>(value: unknown): value is T {
  return (
    value !== null && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string'
  );
}
