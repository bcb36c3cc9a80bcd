/**
 * Writes schema/proxy.schema.json from the configuration schema (`npm run schema`); a test fails
 * when the file is out of step.
 */
import { writeFileSync } from 'node:fs';
import { jsonSchema } from '../src/cli/config/schema.js';

export function schemaText(): string {
  return `${JSON.stringify({ $id: 'https://unpkg.com/mcgravity/schema/proxy.schema.json', ...jsonSchema() }, null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../schema/proxy.schema.json', import.meta.url), schemaText());
  console.log('wrote schema/proxy.schema.json');
}
