/**
 * Reads a configuration file (YAML, or JSON, which is YAML too) and checks it against the schema,
 * reporting every problem where it is: `proxy.yaml:14:9 clusters.claims.backends[2].weight: expected
 * a number >= 0, got "heavy"`, with the nearest known key for a misspelt one. Problems are collected,
 * not thrown one at a time, so that a person fixes a file in one pass.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { checkReferences } from './references.js';
import { configSchema, jsonSchema, type ProxyConfig } from './schema.js';

/** One thing wrong with a file, and where. */
export interface ConfigProblem {
  /** 1-based; absent when the problem has no place (an unreadable file). */
  readonly line?: number;
  readonly column?: number;
  /** Key path, such as `clusters.claims.backends[2].weight`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
}

/** A file that cannot be used: every problem found, each with its place. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(problems.map((problem) => formatProblem(file, problem)).join('\n'));
    this.name = 'ConfigError';
  }
}

/** `proxy.yaml:14:9 clusters.a.weight: expected …`. */
export function formatProblem(file: string, problem: ConfigProblem): string {
  const place = problem.line === undefined ? file : `${file}:${problem.line}:${problem.column ?? 1}`;
  return problem.path === '' ? `${place} ${problem.message}` : `${place} ${problem.path}: ${problem.message}`;
}

type PathKey = string | number;

/** `clusters.claims.backends[2].weight`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$-]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/** Reads and checks `file`; throws a {@link ConfigError} listing every problem. */
export function loadConfig(file: string): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new ConfigError(file, [{ path: '', message: `cannot read the configuration: ${reason}` }]);
  }
  return parseConfig(text, file);
}

/** Checks the text of a configuration file named `file` (for messages and relative paths). */
export function parseConfig(text: string, file: string): ProxyConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const syntaxError = doc.errors[0];
  if (syntaxError !== undefined) {
    // A syntax error hides what follows it: report the first, at the key on its line if there is one.
    const key = keyOnLine(doc, lines, syntaxError.pos[0]);
    const hint = syntaxError.code === 'BAD_INDENT' ? ' (check the indentation)' : '';
    throw new ConfigError(displayName(file), [
      {
        ...at(key?.offset ?? syntaxError.pos[0]),
        path: key === undefined ? '' : formatPath(key.path),
        message: `invalid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${firstLine(syntaxError.message)}${hint}`,
      },
    ]);
  }
  const input: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const parsed = configSchema.safeParse(input, { reportInput: true });
  const located = (path: readonly PathKey[], message: string, key?: string): ConfigProblem => ({
    ...at(offsetOf(doc, path, key)),
    path: formatPath(key === undefined ? path : [...path, key]),
    message,
  });
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => explain(issue, [], located));
    throw new ConfigError(displayName(file), sortProblems(problems));
  }
  const problems = checkReferences(parsed.data, file).map(({ path, message }) => located(path, message));
  if (problems.length > 0) throw new ConfigError(displayName(file), sortProblems(problems));
  return parsed.data;
}

/**
 * Checks a configuration given as a value rather than a file (the running one with a change from
 * the admin API): the same schema and references, problems named by key path without a line.
 */
export function checkConfig(input: unknown, file: string, label: string): ProxyConfig {
  const parsed = configSchema.safeParse(input, { reportInput: true });
  const located = (path: readonly PathKey[], message: string, key?: string): ConfigProblem => ({
    path: formatPath(key === undefined ? path : [...path, key]),
    message,
  });
  if (!parsed.success)
    throw new ConfigError(
      label,
      sortProblems(parsed.error.issues.flatMap((issue) => explain(issue, [], located))),
    );
  const problems = checkReferences(parsed.data, file).map(({ path, message }) => located(path, message));
  if (problems.length > 0) throw new ConfigError(label, sortProblems(problems));
  return parsed.data;
}

function displayName(file: string): string {
  return file.includes('/') ? file : basename(file);
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? text).replace(/ at line \d+, column \d+:?$/, '');
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/** The key (its path and offset) written on the same line as `offset`, as the parser understood it. */
function keyOnLine(
  doc: Document,
  lines: LineCounter,
  offset: number,
): { path: PathKey[]; offset: number } | undefined {
  const line = lines.linePos(offset).line;
  let found: { path: PathKey[]; offset: number } | undefined;
  const visit = (node: unknown, path: PathKey[]): void => {
    if (found !== undefined) return;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        const name = isScalar(key) ? String(key.value) : undefined;
        if (name === undefined) continue;
        if (key?.range && lines.linePos(key.range[0]).line === line) {
          found = { path: [...path, name], offset: key.range[0] };
          return;
        }
        visit(pair.value, [...path, name]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        visit(item, [...path, i]);
      });
    }
  };
  visit(doc.contents, []);
  return found;
}

/** Offset of the node at `path` (or of the key `key` in the map there), or of its nearest parent. */
function offsetOf(doc: Document, path: readonly PathKey[], key?: string): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : (doc.getIn(path.slice(0, depth), true) as Node | undefined);
    if (node === null || node === undefined) continue;
    if (key !== undefined && depth === path.length && isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
      const keyNode = pair?.key as Node | undefined;
      if (keyNode?.range) return keyNode.range[0];
    }
    return node.range?.[0];
  }
  return undefined;
}

type Locate = (path: readonly PathKey[], message: string, key?: string) => ConfigProblem;
type Issue = z.core.$ZodIssue;

/** Turns one schema issue into problems a person can act on. */
function explain(issue: Issue, base: readonly PathKey[], locate: Locate): ConfigProblem[] {
  const path = [...base, ...(issue.path as PathKey[])];
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const suggestion = nearest(key, knownKeys(path));
        return locate(
          path,
          `unknown key "${key}"${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}`,
          key,
        );
      });
    case 'invalid_type':
      if (input === undefined) return [locate(path, 'is required')];
      return [locate(path, `expected ${article(issue.expected)}${bounds(path)}, got ${describe(input)}`)];
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      const suggestion = typeof input === 'string' ? nearest(input, issue.values.map(String)) : undefined;
      return [
        locate(
          path,
          `expected ${values.length === 1 ? values[0] : `one of ${values.join(', ')}`}, got ${describe(input)}${
            suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`
          }`,
        ),
      ];
    }
    case 'too_small':
    case 'too_big':
      return [locate(path, `${bound(issue)}, got ${describe(input)}`)];
    case 'invalid_union':
      return explainUnion(issue, path, input, locate);
    case 'invalid_format':
      return [locate(path, `${issue.message}, got ${describe(input)}`)];
    default:
      return [locate(path, issue.message)];
  }
}

/**
 * A value that fits no alternative: report the alternative whose shape it has (an object with a bad
 * field), else list what would have been accepted.
 */
function explainUnion(
  issue: Extract<Issue, { code: 'invalid_union' }>,
  path: readonly PathKey[],
  input: unknown,
  locate: Locate,
): ConfigProblem[] {
  if (!issue.message.startsWith('Invalid input'))
    return [locate(path, `${issue.message}, got ${describe(input)}`)];
  const branches = issue.errors;
  const mismatch = (branch: readonly Issue[]) =>
    branch.length === 1 && branch[0]?.path.length === 0 && branch[0].code === 'invalid_type';
  const shaped = branches
    .filter(
      (branch) =>
        !mismatch(branch) && branch.some((i) => i.path.length > 0 || i.code === 'unrecognized_keys'),
    )
    .sort((a, b) => a.length - b.length);
  if (shaped[0] !== undefined) return shaped[0].flatMap((inner) => explain(inner, path, locate));
  const accepted = branches.flatMap((branch) => {
    const first = branch[0];
    if (first?.code === 'invalid_type') return [article(first.expected)];
    if (first?.code === 'invalid_value') return first.values.map((v) => JSON.stringify(v));
    return [];
  });
  const unique = [...new Set(accepted)];
  const list =
    unique.length > 1
      ? `${unique.slice(0, -1).join(', ')} or ${unique.at(-1)}`
      : (unique[0] ?? 'another value');
  const values = branches.flatMap((b) => (b[0]?.code === 'invalid_value' ? b[0].values.map(String) : []));
  const suggestion = typeof input === 'string' ? nearest(input, values) : undefined;
  return [
    locate(
      path,
      `expected ${list}, got ${describe(input)}${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}`,
    ),
  ];
}

function bound(issue: Extract<Issue, { code: 'too_small' | 'too_big' }>): string {
  const small = issue.code === 'too_small';
  const limit = Number(
    small ? (issue as { minimum: number | bigint }).minimum : (issue as { maximum: number | bigint }).maximum,
  );
  const inclusive = issue.inclusive !== false;
  switch (issue.origin) {
    case 'array':
      return `expected ${small ? 'at least' : 'at most'} ${limit} item${limit === 1 ? '' : 's'}`;
    case 'string':
      return `expected ${small ? 'at least' : 'at most'} ${limit} character${limit === 1 ? '' : 's'}`;
    default:
      return `expected a number ${small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<'} ${limit}`;
  }
}

function article(type: string): string {
  const names: Record<string, string> = {
    array: 'a list',
    object: 'a mapping',
    record: 'a mapping',
    int: 'an integer',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
  };
  return names[type] ?? `a ${type}`;
}

/** How a value reads in a message. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

interface JsonSchemaNode {
  type?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: JsonSchemaNode | boolean;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
}

let schemaRoot: JsonSchemaNode | undefined;

/** Every alternative the schema allows at `path`. */
function schemasAt(path: readonly PathKey[]): JsonSchemaNode[] {
  schemaRoot ??= jsonSchema() as JsonSchemaNode;
  const expand = (nodes: JsonSchemaNode[]): JsonSchemaNode[] =>
    nodes.flatMap((node) => (node.anyOf ? expand(node.anyOf) : [node]));
  let current = [schemaRoot];
  for (const key of path) {
    current = expand(current).flatMap((node) => {
      if (typeof key === 'number') return node.items ? [node.items] : [];
      const next =
        node.properties?.[key] ??
        (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
      return next ? [next] : [];
    });
  }
  return expand(current);
}

/** The keys the schema knows for the mapping at `path` (every alternative's). */
function knownKeys(path: readonly PathKey[]): string[] {
  return [...new Set(schemasAt(path).flatMap((node) => Object.keys(node.properties ?? {})))];
}

/** ` >= 0`, ` from 1 to 10`: the bounds of the number expected at `path`, if any. */
function bounds(path: readonly PathKey[]): string {
  const number = schemasAt(path).find((node) => node.type === 'number' || node.type === 'integer');
  if (number === undefined) return '';
  const { minimum, maximum, exclusiveMinimum } = number;
  if (minimum !== undefined && maximum !== undefined) return ` from ${minimum} to ${maximum}`;
  if (minimum !== undefined) return ` >= ${minimum}`;
  if (exclusiveMinimum !== undefined) return ` > ${exclusiveMinimum}`;
  if (maximum !== undefined) return ` <= ${maximum}`;
  return '';
}

/** The candidate closest to `word` by edit distance, if it is close enough to be a typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions (a typo swaps two letters). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(
        (d[(i - 1) * cols + j] as number) + 1,
        (d[i * cols + j - 1] as number) + 1,
        (d[(i - 1) * cols + j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, (d[(i - 2) * cols + j - 2] as number) + 1);
      }
      d[i * cols + j] = value;
    }
  }
  return d[rows * cols - 1] as number;
}
