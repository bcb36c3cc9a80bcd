/**
 * The Prometheus text exposition format (0.0.4): metric families with HELP and TYPE lines and
 * labelled samples, escaped as the format requires. Knows nothing of what it formats: the admin reads
 * clusters, limiters and proxies and hands their figures here.
 */

/** The labels of one sample. */
export type Labels = Readonly<Record<string, string>>;

/** Escapes a label value (backslash, double quote, newline). */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value as the format writes it (`NaN`, `+Inf`, `-Inf`). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** One metric family: its name, type, help text and labelled samples. */
export interface MetricFamily {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly samples: readonly (readonly [Labels, number])[];
}

/** Builds the text of a scrape, family by family. */
export class Exposition {
  readonly #lines: string[] = [];

  family(
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    samples: readonly (readonly [Labels, number])[],
  ): void {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const entries = Object.entries(labels);
      const rendered =
        entries.length === 0 ? '' : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
      this.#lines.push(`${name}${rendered} ${formatValue(value)}`);
    }
  }

  toString(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}
