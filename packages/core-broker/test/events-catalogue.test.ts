import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const SRC = path.join(__dirname, '../src');
const CATALOGUE = readFileSync(path.join(__dirname, '../../../docs/events.md'), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Event names declared in the sources: keys of `…Events` interfaces, and `type: '…'` of event unions. */
function declaredEvents(): Set<string> {
  const names = new Set<string>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const block of text.matchAll(/export interface \w+Events \{([\s\S]*?)\n\}/g)) {
      for (const key of block[1]!.matchAll(/^ {2}'([a-z][a-z.-]+)':/gm)) names.add(key[1]!);
    }
    for (const block of text.matchAll(/export type \w+Event =([\s\S]*?);\n\n/g)) {
      for (const type of block[1]!.matchAll(/type: '([a-z][a-z.-]+)'/g)) names.add(type[1]!);
    }
  }
  return names;
}

test('every event declared in the sources is listed in docs/events.md', () => {
  const declared = declaredEvents();
  // the scan finds the families it should (a broken scan would pass vacuously)
  for (const known of [
    'producer.send',
    'consumer.rebalance',
    'transaction.check.dropped',
    'broker.dropped',
  ]) {
    expect(declared).toContain(known);
  }
  const missing = [...declared].filter((name) => !CATALOGUE.includes(`\`${name}\``));
  expect(missing).toEqual([]);
});
