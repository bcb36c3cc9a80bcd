import { parseDocument, LineCounter } from 'yaml';
import { readFileSync } from 'node:fs';
const doc = parseDocument(readFileSync(process.argv[2], 'utf8'));
console.log(doc.errors.map(e => [e.code, e.pos]), JSON.stringify(doc.toJS()));
