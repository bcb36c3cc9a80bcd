/**
 * Writes docs/configuration.md, the reference of every key of proxy.yaml, from the same schema that
 * validates the file (through its JSON Schema): key, type, default and description, one table per
 * section. `npm run schema` writes it; a test fails when it is out of step.
 */
import { writeFileSync } from 'node:fs';
import { jsonSchema } from '../src/cli/config/schema.js';

interface Node {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: Node[];
  oneOf?: Node[];
  properties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  propertyNames?: Node;
  items?: Node;
  required?: string[];
  default?: unknown;
  description?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  pattern?: string;
}

const INTRO = `# Configuration reference

Every key of the \`mcgravity\` command's configuration file (\`proxy.yaml\`, or the same in JSON),
generated from the schema that checks the file, so it is always the schema's. \`mcgravity --check
proxy.yaml\` prints a file with every default filled in; [cli.md](cli.md) describes how the command
uses it, and [examples/proxy.yaml](../examples/proxy.yaml) is a working one. Editors complete and
check keys from \`schema/proxy.schema.json\` in the package.

Durations are milliseconds or text such as \`"500ms"\`, \`"10s"\`, \`"1m30s"\`; sizes are bytes or text
such as \`"512KB"\`, \`"100MB"\` (powers of 1024). A header value written \`/like this/i\` is a regular
expression. Keys marked **required** have no default.
`;

/** The object branch of a node (itself, or one of its alternatives). */
function objectOf(node: Node): Node | undefined {
  if (node.properties !== undefined) return node;
  for (const branch of node.anyOf ?? node.oneOf ?? []) {
    const found = objectOf(branch);
    if (found !== undefined) return found;
  }
  return undefined;
}

function typeOf(node: Node): string {
  if (node.format === 'duration') return 'duration';
  if (node.format === 'size') return 'size';
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum !== undefined) return node.enum.map((v) => `\`${JSON.stringify(v)}\``).join(', ');
  const branches = node.anyOf ?? node.oneOf;
  if (branches !== undefined) return [...new Set(branches.map(typeOf))].join(' or ');
  if (node.type === 'array') return `list of ${node.items === undefined ? 'values' : typeOf(node.items)}`;
  if (
    node.type === 'object' &&
    node.properties === undefined &&
    typeof node.additionalProperties === 'object'
  )
    return `map of name → ${typeOf(node.additionalProperties)}`;
  let type = Array.isArray(node.type) ? node.type.join(' or ') : (node.type ?? 'value');
  // zod gives integers the safe range as bounds: those say nothing to a reader.
  const bound = (value: number | undefined) =>
    value === undefined || Math.abs(value) >= Number.MAX_SAFE_INTEGER ? undefined : value;
  const minimum = bound(node.minimum);
  const maximum = bound(node.maximum);
  const above = bound(node.exclusiveMinimum);
  if (minimum !== undefined && maximum !== undefined) type += ` ${minimum}–${maximum}`;
  else if (above !== undefined && maximum !== undefined) type += ` > ${above}, ≤ ${maximum}`;
  else if (minimum !== undefined) type += ` ≥ ${minimum}`;
  else if (above !== undefined) type += ` > ${above}`;
  else if (maximum !== undefined) type += ` ≤ ${maximum}`;
  return type;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Appends the section of the object at `path`, then the sections of the objects inside it. */
function section(out: string[], path: string, node: Node, description: string | undefined): void {
  const object = objectOf(node);
  if (object?.properties === undefined) return;
  out.push(`\n## \`${path}\`\n`);
  if (description !== undefined) out.push(`${description}\n`);
  out.push('| key | type | default | description |', '| --- | --- | --- | --- |');
  const nested: [string, Node][] = [];
  const required = new Set(object.required ?? []);
  for (const [key, child] of Object.entries(object.properties)) {
    if (key === '$schema') continue;
    const childPath = `${path}.${key}`;
    const target = child.type === 'array' && child.items !== undefined ? child.items : child;
    const record =
      target.properties === undefined && typeof target.additionalProperties === 'object'
        ? target.additionalProperties
        : undefined;
    const sub = objectOf(record ?? target);
    const suffix = child.type === 'array' ? '[]' : record !== undefined ? '.<name>' : '';
    if (sub !== undefined) nested.push([`${childPath}${suffix}`, record ?? target]);
    const defaulted =
      child.default === undefined
        ? required.has(key)
          ? '**required**'
          : '—'
        : `\`${JSON.stringify(child.default)}\``;
    const see =
      sub === undefined ? '' : ` See [\`${childPath}${suffix}\`](#${anchor(`${childPath}${suffix}`)}).`;
    const about = child.description ?? objectOf(child)?.description ?? '';
    out.push(`| \`${key}\` | ${cell(typeOf(child))} | ${cell(defaulted)} | ${cell((about + see).trim())} |`);
  }
  for (const [childPath, child] of nested)
    section(out, childPath, child, child.description ?? objectOf(child)?.description);
}

/** GitHub's heading anchor for a heading that is `text` in backticks. */
function anchor(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

export function configurationText(): string {
  const schema = jsonSchema() as Node;
  const out: string[] = [INTRO];
  for (const [key, node] of Object.entries(schema.properties ?? {})) {
    if (key === '$schema') continue;
    const record = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
    const items = node.type === 'array' ? node.items : undefined;
    const path = record !== undefined ? `${key}.<name>` : items !== undefined ? `${key}[]` : key;
    section(
      out,
      path,
      record ?? items ?? node,
      node.description ?? record?.description ?? items?.description,
    );
  }
  return `${out.join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../docs/configuration.md', import.meta.url), configurationText());
  console.log('wrote docs/configuration.md');
}
